using System.Diagnostics;
using System.Text;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests;

/// <summary>
/// The broker as an operator runs it: a separate process that logs where it listens and, on SIGTERM, tells its
/// clients it is going and exits cleanly.
/// </summary>
public sealed class ProcessLifecycleTests
{
    [Fact]
    public async Task Broker_process_logs_its_listeners_and_stops_cleanly_on_sigterm()
    {
        var tcpPort = BrokerServer.FreePort();
        var webSocketPort = BrokerServer.FreePort();
        using var broker = StartBrokerProcess($"--Broker:Tcp:Port={tcpPort}", $"--Broker:WebSocket:Port={webSocketPort}");
        var log = new StringBuilder();
        var listening = new TaskCompletionSource();
        broker.OutputDataReceived += (_, e) =>
        {
            lock (log)
            {
                log.AppendLine(e.Data);
                if (log.ToString().Contains($"stomp://127.0.0.1:{tcpPort}", StringComparison.Ordinal)
                    && log.ToString().Contains($"ws://127.0.0.1:{webSocketPort}/ws", StringComparison.Ordinal))
                {
                    listening.TrySetResult();
                }
            }
        };
        broker.BeginOutputReadLine();
        broker.BeginErrorReadLine();

        try
        {
            await listening.Task.WaitAsync(TimeSpan.FromSeconds(30));

            await using var client = await StompTestClient.ConnectTcpAsync(tcpPort);
            await client.ConnectAsync();

            using (var kill = Process.Start("kill", ["-TERM", broker.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync();
            }

            var error = await client.ExpectErrorAsync();
            Assert.Equal("server shutting down", error["message"]);
            await client.ExpectClosedAsync();

            using var exited = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await broker.WaitForExitAsync(exited.Token);
            Assert.Equal(0, broker.ExitCode);
        }
        finally
        {
            if (!broker.HasExited)
            {
                broker.Kill(entireProcessTree: true);
            }
        }
    }

    [Fact]
    public async Task Broker_process_refuses_invalid_configuration_with_a_message_naming_the_setting()
    {
        using var broker = StartBrokerProcess("--Broker:Tcp:Port=0", "--Broker:WebSocket:Port=0");
        var stdout = broker.StandardOutput.ReadToEndAsync();
        var stderr = broker.StandardError.ReadToEndAsync();
        using var exited = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await broker.WaitForExitAsync(exited.Token);
        Assert.NotEqual(0, broker.ExitCode);
        Assert.Contains("Broker:Tcp:Port and Broker:WebSocket:Port are both 0", await stdout + await stderr, StringComparison.Ordinal);
    }

    private static Process StartBrokerProcess(params string[] args)
    {
        // The broker's build output is copied next to the tests (project reference).
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "StompBroker.dll"));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["Logging__Console__FormatterName"] = "simple";
        return Process.Start(info) ?? throw new InvalidOperationException("could not start the broker process");
    }
}
