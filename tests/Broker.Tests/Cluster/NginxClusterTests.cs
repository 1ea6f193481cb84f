using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Cluster;

/// <summary>
/// The topology of docker/docker-compose.yml without Docker: RabbitMQ, two broker processes and Debian's nginx running
/// docker/nginx.conf (its addresses rewritten to loopback ports, plus what a private nginx needs), all on loopback.
/// A real stomp.js client connects through nginx and receives what a client on the other node sends.
/// </summary>
[Collection(RabbitMqTestGroup.Name)]
public sealed class NginxClusterTests(RabbitMqServer rabbit)
{
    [Fact]
    public async Task A_stompjs_client_connected_through_nginx_to_node_A_receives_what_a_client_on_node_B_sends()
    {
        await using var nodes = await BrokerNodes.StartAsync(rabbit.AmqpUri);
        // docker/nginx.conf with node A as the only upstream server: every connection through nginx lands on node A.
        await using var nginx = await NginxProcess.StartAsync(nodes.A.WebSocketPort, nodeB: null);

        var topic = Unique.Topic("nginx");
        var queue = Unique.Queue("nginx");
        await ReceiveThroughNginxAsync(nginx, [topic, queue], ["topic from node B", "queue from node B"], async () =>
        {
            await using var sender = await StompTestClient.ConnectTcpAsync(nodes.B.TcpPort);
            await sender.ConnectAsync();
            await sender.SendAsync(topic, "topic from node B", receipt: true);
            await sender.SendAsync(queue, "queue from node B", receipt: true);
        });
    }

    [Fact]
    public async Task Through_the_two_node_upstream_of_nginx_conf_a_stompjs_client_receives_what_clients_on_both_nodes_send()
    {
        await using var nodes = await BrokerNodes.StartAsync(rabbit.AmqpUri);
        // docker/nginx.conf's upstream as it is (both nodes, hash $remote_addr): whichever node nginx picks, one of the
        // two messages crosses from the other node.
        await using var nginx = await NginxProcess.StartAsync(nodes.A.WebSocketPort, nodes.B.WebSocketPort);

        var topic = Unique.Topic("nginx-both");
        await ReceiveThroughNginxAsync(nginx, [topic], ["sent on node A", "sent on node B"], async () =>
        {
            foreach (var (node, body) in new[] { (nodes.A, "sent on node A"), (nodes.B, "sent on node B") })
            {
                await using var sender = await StompTestClient.ConnectTcpAsync(node.TcpPort);
                await sender.ConnectAsync();
                await sender.SendAsync(topic, body, receipt: true);
            }
        });
    }

    /// <summary>
    /// Runs stomp.js (tests/interop/stompjs-scenarios.mjs, scenario receive) through nginx on <paramref name="destinations"/>;
    /// once it is subscribed, <paramref name="send"/> runs; stomp.js must then receive exactly <paramref name="expected"/>.
    /// </summary>
    private static async Task ReceiveThroughNginxAsync(NginxProcess nginx, string[] destinations, string[] expected, Func<Task> send)
    {
        var readyFile = Path.Combine(nginx.Folder, "stompjs-ready.json");
        string[] args =
        [
            .. destinations.SelectMany(d => new[] { "--destination", d }),
            .. expected.SelectMany(b => new[] { "--expect", b }),
            "--ready-file", readyFile,
            "--timeout", "20",
        ];
        var receiver = ExternalClient.RunStompJsAsync(nginx.WebSocketUri, "receive", args);
        try
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            while (!File.Exists(readyFile))
            {
                if (receiver.IsCompleted)
                {
                    await receiver; // its verdict says why it stopped
                    Assert.Fail("stomp.js ended without subscribing");
                }

                if (deadline.IsCancellationRequested)
                {
                    Assert.Fail($"stomp.js did not subscribe through nginx within 20 s\n{nginx.Log}");
                }

                await Task.Delay(50, CancellationToken.None);
            }

            await send();
        }
        finally
        {
            // stomp.js stops by itself (its hard timeout) when something went wrong: no node process outlives the test.
            await Task.WhenAny(receiver, Task.Delay(TimeSpan.FromSeconds(45)));
        }

        await receiver;

        // nginx logged the WebSocket upgrade (101) of stomp.js's connection once it closed: it did go through nginx.
        using var logged = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        while (!nginx.AccessLog.Contains("\"GET /ws HTTP/1.1\" 101 ", StringComparison.Ordinal))
        {
            if (logged.IsCancellationRequested)
            {
                Assert.Fail($"nginx did not log the WebSocket upgrade of stomp.js's connection\n{nginx.Log}");
            }

            await Task.Delay(50, CancellationToken.None);
        }
    }

    /// <summary>Brokers A and B, each a `dotnet StompBroker.dll` process on the RabbitMQ backend.</summary>
    private sealed class BrokerNodes : IAsyncDisposable
    {
        private BrokerNodes(BrokerProcess a, BrokerProcess b)
        {
            A = a;
            B = b;
        }

        public BrokerProcess A { get; }

        public BrokerProcess B { get; }

        public static async Task<BrokerNodes> StartAsync(string amqpUri)
        {
            var a = BrokerProcess.StartAsync("A", amqpUri);
            var b = BrokerProcess.StartAsync("B", amqpUri);
            try
            {
                await Task.WhenAll(a, b);
            }
            catch
            {
                foreach (var started in new[] { a, b }.Where(t => t.IsCompletedSuccessfully))
                {
                    await started.Result.DisposeAsync();
                }

                throw;
            }

            return new BrokerNodes(a.Result, b.Result);
        }

        public async ValueTask DisposeAsync() => await Task.WhenAll(A.DisposeAsync().AsTask(), B.DisposeAsync().AsTask());
    }

    /// <summary>One broker as an operator runs it: `dotnet StompBroker.dll` from the test output, with its own ports.</summary>
    private sealed class BrokerProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _log = new();
        private readonly string _name;

        private BrokerProcess(string name, Process process, int tcpPort, int webSocketPort)
        {
            _name = name;
            _process = process;
            TcpPort = tcpPort;
            WebSocketPort = webSocketPort;
        }

        public int TcpPort { get; }

        public int WebSocketPort { get; }

        public string Log
        {
            get
            {
                lock (_log)
                {
                    return $"--- broker {_name} (tcp {TcpPort}, ws {WebSocketPort}) ---\n{_log}";
                }
            }
        }

        public static async Task<BrokerProcess> StartAsync(string name, string amqpUri)
        {
            var tcpPort = BrokerServer.FreePort();
            var webSocketPort = BrokerServer.FreePort();
            var info = new ProcessStartInfo("dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = AppContext.BaseDirectory,
            };
            info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "StompBroker.dll"));
            info.ArgumentList.Add("--Broker:Backend=RabbitMq");
            info.ArgumentList.Add($"--Broker:RabbitMq:Uri={amqpUri}");
            info.ArgumentList.Add(FormattableString.Invariant($"--Broker:Tcp:Port={tcpPort}"));
            info.ArgumentList.Add(FormattableString.Invariant($"--Broker:WebSocket:Port={webSocketPort}"));
            info.ArgumentList.Add("--Broker:ShutdownGracePeriod=00:00:02");
            info.Environment["Logging__Console__FormatterName"] = "simple";

            var process = Process.Start(info) ?? throw new InvalidOperationException("could not start the broker process");
            var broker = new BrokerProcess(name, process, tcpPort, webSocketPort);
            var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            process.OutputDataReceived += (_, e) => broker.Append(e.Data, () =>
            {
                if (e.Data?.Contains("Listening for STOMP over WebSocket", StringComparison.Ordinal) == true)
                {
                    listening.TrySetResult();
                }
            });
            process.ErrorDataReceived += (_, e) => broker.Append(e.Data, null);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                var exited = process.WaitForExitAsync(deadline.Token);
                if (await Task.WhenAny(listening.Task, exited) != listening.Task)
                {
                    Assert.Fail($"broker {name} did not log 'Listening for STOMP over WebSocket' (exited: {process.HasExited})\n{broker.Log}");
                }

                await WaitUntilReadyAsync(new Uri($"http://127.0.0.1:{webSocketPort}/health/ready"), process, () => broker.Log, deadline.Token);
                return broker;
            }
            catch
            {
                await broker.DisposeAsync();
                throw;
            }
        }

        private void Append(string? line, Action? then)
        {
            if (line is null)
            {
                return;
            }

            lock (_log)
            {
                _log.AppendLine(line);
            }

            then?.Invoke();
        }

        public async ValueTask DisposeAsync()
        {
            await StopAsync(_process, "-TERM", TimeSpan.FromSeconds(15));
            _process.Dispose();
        }
    }

    /// <summary>
    /// Debian's nginx (/usr/sbin/nginx, tests/run.sh installs it) in the foreground, on docker/nginx.conf as the compose
    /// file runs it: only its addresses are rewritten, and the paths a private, unprivileged nginx needs are added.
    /// </summary>
    private sealed class NginxProcess : IAsyncDisposable
    {
        private const string Nginx = "/usr/sbin/nginx";
        private readonly Process _process;
        private readonly StringBuilder _output;

        private NginxProcess(Process process, StringBuilder output, string folder, int port)
        {
            _process = process;
            _output = output;
            Folder = folder;
            WebSocketUri = new Uri($"ws://127.0.0.1:{port}/ws");
        }

        /// <summary>The private folder: configuration, pid file, logs, temporary files.</summary>
        public string Folder { get; }

        public Uri WebSocketUri { get; }

        public string Log
        {
            get
            {
                string output;
                lock (_output)
                {
                    output = _output.ToString();
                }

                return $"--- nginx output ---\n{output}--- nginx access.log ---\n{AccessLog}";
            }
        }

        public string AccessLog
        {
            get
            {
                var path = Path.Combine(Folder, "access.log");
                return File.Exists(path) ? File.ReadAllText(path) : "";
            }
        }

        /// <summary>Starts nginx with node A and, when given, node B as the upstream servers.</summary>
        public static async Task<NginxProcess> StartAsync(int nodeA, int? nodeB)
        {
            Assert.True(File.Exists(Nginx), $"{Nginx} is missing: tests/run.sh installs Debian's nginx package");
            var folder = Path.Combine(Path.GetTempPath(), "stompbroker-nginx-" + Guid.NewGuid().ToString("N")[..8]);
            Directory.CreateDirectory(folder);
            var port = BrokerServer.FreePort();
            var config = Path.Combine(folder, "nginx.conf");
            await File.WriteAllTextAsync(config, Configuration(folder, port, nodeA, nodeB));

            var info = new ProcessStartInfo(Nginx)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = folder,
            };
            // -e: where nginx logs before it has read the configuration (the compiled-in path may not be writable).
            foreach (var arg in new[] { "-e", "stderr", "-p", folder + "/", "-c", config })
            {
                info.ArgumentList.Add(arg);
            }

            var output = new StringBuilder();
            var process = Process.Start(info) ?? throw new InvalidOperationException("could not start nginx");
            var nginx = new NginxProcess(process, output, folder, port);
            DataReceivedEventHandler append = (_, e) =>
            {
                if (e.Data is not null)
                {
                    lock (output)
                    {
                        output.AppendLine(e.Data);
                    }
                }
            };
            process.OutputDataReceived += append;
            process.ErrorDataReceived += append;
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                // Through nginx to the broker: proves the proxy path before any STOMP client uses it.
                using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(15));
                await WaitUntilReadyAsync(new Uri($"http://127.0.0.1:{port}/health/ready"), process, () => $"{nginx.Log}\n--- nginx.conf ---\n{File.ReadAllText(config)}", deadline.Token);
                return nginx;
            }
            catch
            {
                await nginx.DisposeAsync();
                throw;
            }
        }

        /// <summary>docker/nginx.conf, rewritten for loopback and a private prefix; every rewrite must find its target.</summary>
        private static string Configuration(string folder, int port, int nodeA, int? nodeB)
        {
            var text = File.ReadAllText(Path.Combine(ExternalClient.RepositoryRoot, "docker", "nginx.conf"));
            text = ReplaceOnce(text, @"(?m)^(\s*server\s+)broker-a:15674\b", FormattableString.Invariant($"${{1}}127.0.0.1:{nodeA}"));
            text = nodeB is { } b
                ? ReplaceOnce(text, @"(?m)^(\s*server\s+)broker-b:15674\b", FormattableString.Invariant($"${{1}}127.0.0.1:{b}"))
                : ReplaceOnce(text, @"(?m)^\s*server\s+broker-b:15674\b[^\n]*\n", "");
            text = ReplaceOnce(text, @"(?m)^(\s*listen\s+)8080\s*;", FormattableString.Invariant($"${{1}}127.0.0.1:{port};"));
            string Quoted(string name) => "\"" + Path.Combine(folder, name) + "\"";
            text = ReplaceOnce(text, @"(?m)^http\s*\{", string.Join(
                "\n  ",
                "http {",
                $"access_log {Quoted("access.log")};",
                $"client_body_temp_path {Quoted("client_body")};",
                $"proxy_temp_path {Quoted("proxy")};",
                $"fastcgi_temp_path {Quoted("fastcgi")};",
                $"uwsgi_temp_path {Quoted("uwsgi")};",
                $"scgi_temp_path {Quoted("scgi")};"));
            return string.Join(
                "\n",
                "# Generated by NginxClusterTests from docker/nginx.conf: a private nginx in the foreground.",
                "daemon off;",
                $"pid {Quoted("nginx.pid")};",
                "error_log stderr notice;",
                text);
        }

        private static string ReplaceOnce(string text, string pattern, string replacement)
        {
            var regex = new Regex(pattern, RegexOptions.None, TimeSpan.FromSeconds(1));
            var matches = regex.Count(text);
            Assert.True(matches == 1, $"docker/nginx.conf: expected exactly one match of {pattern}, found {matches}");
            return regex.Replace(text, replacement);
        }

        public async ValueTask DisposeAsync()
        {
            // SIGTERM: fast shutdown of the master and its workers.
            await StopAsync(_process, "-TERM", TimeSpan.FromSeconds(5));
            _process.Dispose();
            try
            {
                Directory.Delete(Folder, recursive: true);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }

    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(2) };

    /// <summary>Polls <paramref name="uri"/> until it answers 200; fails if the process exits or the deadline passes.</summary>
    private static async Task WaitUntilReadyAsync(Uri uri, Process process, Func<string> log, CancellationToken deadline)
    {
        var last = "no answer";
        while (true)
        {
            if (process.HasExited)
            {
                Assert.Fail($"{uri}: the process exited ({process.ExitCode})\n{log()}");
            }

            try
            {
                using var response = await Http.GetAsync(uri, CancellationToken.None);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }

                last = $"HTTP {(int)response.StatusCode}";
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                last = ex.Message;
            }

            if (deadline.IsCancellationRequested)
            {
                Assert.Fail($"{uri} did not answer 200 in time (last: {last})\n{log()}");
            }

            await Task.Delay(100, CancellationToken.None);
        }
    }

    /// <summary>Sends <paramref name="signal"/>, waits for the exit, and kills the whole tree if it takes too long.</summary>
    private static async Task StopAsync(Process process, string signal, TimeSpan grace)
    {
        try
        {
            if (process.HasExited)
            {
                return;
            }

            using (var kill = Process.Start("kill", [signal, process.Id.ToString(CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync();
            }

            using var timeout = new CancellationTokenSource(grace);
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
        }
        catch (InvalidOperationException)
        {
            return; // never started or already gone
        }

        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }
}
