using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Broker.Backends.InMemory;
using Broker.Tests.Infrastructure;

namespace Broker.Client.Tests;

/// <summary>Client options and connections aimed at an in-process broker, with deadlines short enough for tests.</summary>
public static class Clients
{
    /// <summary>How long a test waits for anything that should happen promptly.</summary>
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    /// <summary>Fast reconnects: from 50 ms up to 500 ms between tries.</summary>
    public static readonly StompReconnectOptions FastReconnect = new() { MinDelay = TimeSpan.FromMilliseconds(50), MaxDelay = TimeSpan.FromMilliseconds(500) };

    public static Uri UriOf(BrokerServer server, Transport transport) =>
        transport == Transport.Tcp ? new Uri($"tcp://127.0.0.1:{server.TcpPort}") : server.WebSocketUri;

    public static StompClientOptions Options(Uri uri) => new()
    {
        Uri = uri,
        ConnectTimeout = TimeSpan.FromSeconds(5),
        ReceiptTimeout = Deadline,
        Reconnect = FastReconnect,
    };

    public static StompClientOptions Options(BrokerServer server, Transport transport) => Options(UriOf(server, transport));

    public static Task<StompClient> ConnectAsync(BrokerServer server, Transport transport, Func<StompClientOptions, StompClientOptions>? configure = null)
    {
        var options = Options(server, transport);
        return StompClient.ConnectAsync(configure is null ? options : configure(options));
    }

    public static StompSendOptions Receipted { get; } = new() { WaitForReceipt = true };

    /// <summary>Messages waiting in a /queue/NAME of the broker's in-memory backend.</summary>
    public static int QueueDepth(this BrokerServer server, string destination) =>
        server.GetService<InMemoryBackend>().GetQueueDepth(Unique.QueueName(destination));
}

/// <summary>Broker users for tests.</summary>
public static class Credentials
{
    /// <summary>
    /// The setting that makes <paramref name="login"/> a broker user with <paramref name="password"/>: a PBKDF2 hash
    /// in the broker's self-describing format, with few iterations so tests stay fast.
    /// </summary>
    public static string User(string login, string password)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        var hash = Rfc2898DeriveBytes.Pbkdf2(password, salt, 1000, HashAlgorithmName.SHA256, 32);
        return $"Broker:Security:Users:{login}:PasswordHash=pbkdf2-sha256$1000${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}";
    }
}

public static class SubscriptionExtensions
{
    /// <summary>The next message, failing the test when none comes before the deadline.</summary>
    public static async Task<StompMessage> NextAsync(this StompSubscription subscription, TimeSpan? timeout = null)
    {
        var deadline = timeout ?? Clients.Deadline;
        using var cts = new CancellationTokenSource(deadline);
        try
        {
            return await subscription.ReceiveAsync(cts.Token);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            Assert.Fail($"no message on {subscription.Destination} within {deadline.TotalSeconds:0.#} s");
            throw;
        }
    }

    /// <summary>The next <paramref name="count"/> bodies, as text.</summary>
    public static async Task<List<string>> NextTextsAsync(this StompSubscription subscription, int count)
    {
        var texts = new List<string>(count);
        for (var i = 0; i < count; i++)
        {
            texts.Add((await subscription.NextAsync()).BodyText);
        }

        return texts;
    }
}

/// <summary>Records a client's <see cref="StompClient.StateChanged"/> events.</summary>
public sealed class StateRecorder
{
    private readonly ConcurrentQueue<StompConnectionStateChangedEventArgs> _events = new();

    public StateRecorder(StompClient client) => client.StateChanged += (_, e) => _events.Enqueue(e);

    public IReadOnlyList<StompConnectionStateChangedEventArgs> Events => [.. _events];

    public IReadOnlyList<(StompConnectionState From, StompConnectionState To)> Transitions => [.. _events.Select(e => (e.Previous, e.Current))];

    public Task WaitForAsync(StompConnectionState from, StompConnectionState to, TimeSpan? timeout = null) =>
        Wait.UntilAsync(() => Transitions.Contains((from, to)), timeout ?? Clients.Deadline, $"a StateChanged event {from} -> {to}; seen: {Describe()}");

    public string Describe() => string.Join(", ", Transitions.Select(t => $"{t.From}->{t.To}"));
}

/// <summary>
/// A raw TCP peer playing the broker, for what the real one cannot show: it records each CONNECT frame it gets and
/// answers with the given frame (or, with null, never answers at all).
/// </summary>
public sealed class FakeStompServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Func<int, string?> _answer;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentBag<TcpClient> _accepted = [];
    private readonly Task _accepting;

    /// <param name="answer">The reply to the n-th CONNECT (1-based); null to stay silent; "" to close the connection.</param>
    public FakeStompServer(Func<int, string?> answer)
    {
        _answer = answer;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    /// <summary>A broker that answers every CONNECT with CONNECTED 1.2 and the given heart-beat header.</summary>
    public static FakeStompServer Answering(string heartBeat = "0,0") =>
        new(_ => $"CONNECTED\nversion:1.2\nheart-beat:{heartBeat}\nserver:fake\nsession:fake-1\n\n\0");

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public Uri Uri => new($"tcp://127.0.0.1:{Port}");

    /// <summary>The CONNECT frames received, each as header name/value pairs (the first pair is the command).</summary>
    public ConcurrentQueue<Dictionary<string, string>> Connects { get; } = new();

    public int Accepted => _accepted.Count;

    /// <summary>The frames after CONNECT, from every connection.</summary>
    public ConcurrentQueue<Dictionary<string, string>> Frames { get; } = new();

    /// <summary>Whether frames with a receipt header get their RECEIPT (the default).</summary>
    public bool SendsReceipts { get; init; } = true;

    /// <summary>More to write after a frame (and its RECEIPT), in the same write; null for nothing.</summary>
    public Func<Dictionary<string, string>, string?>? Reply { get; init; }

    /// <summary>When each connection was accepted, on a clock started with the server.</summary>
    public ConcurrentQueue<TimeSpan> AcceptedAt { get; } = new();

    private readonly Stopwatch _clock = Stopwatch.StartNew();

    /// <summary>Cuts every connection accepted so far, as a crashing broker would.</summary>
    public void DropAll()
    {
        foreach (var client in _accepted)
        {
            client.Client.Close(0);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        foreach (var client in _accepted)
        {
            client.Dispose();
        }

        await _accepting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            AcceptedAt.Enqueue(_clock.Elapsed);
            _accepted.Add(client);
            _ = ServeAsync(client);
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        try
        {
            var stream = client.GetStream();
            var pending = new List<byte>();
            var buffer = new byte[4096];
            var connected = false;
            while (true)
            {
                var read = await stream.ReadAsync(buffer, _stop.Token);
                if (read == 0)
                {
                    return;
                }

                pending.AddRange(buffer.AsSpan(0, read).ToArray());
                int end;
                while ((end = pending.IndexOf(0)) >= 0)
                {
                    var headers = ParseFrame(Encoding.UTF8.GetString([.. pending.Take(end)]).TrimStart('\r', '\n'));
                    pending.RemoveRange(0, end + 1);
                    if (!connected)
                    {
                        connected = true;
                        Connects.Enqueue(headers);
                        switch (_answer(Connects.Count))
                        {
                            case "":
                                client.Client.Close(0);
                                return;
                            case { } answer:
                                await stream.WriteAsync(Encoding.UTF8.GetBytes(answer), _stop.Token);
                                break;
                        }

                        continue;
                    }

                    Frames.Enqueue(headers);
                    var reply = SendsReceipts && headers.TryGetValue("receipt", out var receipt) ? $"RECEIPT\nreceipt-id:{receipt}\n\n\0" : "";
                    reply += Reply?.Invoke(headers) ?? "";
                    if (reply.Length > 0)
                    {
                        await stream.WriteAsync(Encoding.UTF8.GetBytes(reply), _stop.Token);
                    }
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
        }
    }

    // A frame's command (as "command") and headers; the body is ignored.
    private static Dictionary<string, string> ParseFrame(string text)
    {
        var lines = text.Split('\n');
        var headers = new Dictionary<string, string>(StringComparer.Ordinal) { ["command"] = lines[0] };
        foreach (var line in lines.Skip(1).TakeWhile(l => l.Length > 0))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            headers.TryAdd(line[..colon], line[(colon + 1)..]);
        }

        return headers;
    }
}

/// <summary>
/// A TLS-terminating TCP proxy in front of a broker port (the broker has no TLS listener): the client speaks TLS to
/// the proxy, which forwards the plaintext both ways. Its certificate is self-signed, made for 127.0.0.1.
/// </summary>
public sealed class TlsProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _targetPort;
    private readonly bool _rewriteHost;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentBag<IDisposable> _open = [];
    private readonly Task _accepting;

    /// <param name="targetPort">The broker port to forward to.</param>
    /// <param name="rewriteHost">
    /// Rewrite the port in the Host header of the first HTTP request to the target's, as a reverse proxy that passes the
    /// upstream host does: the broker maps its WebSocket endpoint with RequireHost("*:port"), which matches the Host
    /// header, so a Host naming the proxy's port gets a 404.
    /// </param>
    public TlsProxy(int targetPort, bool rewriteHost = false)
    {
        _targetPort = targetPort;
        _rewriteHost = rewriteHost;
        Certificate = CreateCertificate();
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public X509Certificate2 Certificate { get; }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Accepts exactly this proxy's certificate.</summary>
    public RemoteCertificateValidationCallback Validation =>
        (_, certificate, _, _) => certificate is not null && certificate.GetCertHashString() == Certificate.GetCertHashString();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        foreach (var item in _open)
        {
            item.Dispose();
        }

        await _accepting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        Certificate.Dispose();
        _stop.Dispose();
    }

    private static X509Certificate2 CreateCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pfx), null);
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _open.Add(client);
            _ = ForwardAsync(client);
        }
    }

    private async Task ForwardAsync(TcpClient client)
    {
        try
        {
            var tls = new SslStream(client.GetStream(), leaveInnerStreamOpen: false);
            _open.Add(tls);
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = Certificate }, _stop.Token);
            var upstream = new TcpClient { NoDelay = true };
            _open.Add(upstream);
            await upstream.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
            var plain = upstream.GetStream();
            if (_rewriteHost)
            {
                await ForwardRequestHeadAsync(tls, plain);
            }

            await Task.WhenAny(CopyAsync(tls, plain), CopyAsync(plain, tls));
            upstream.Dispose();
            await tls.DisposeAsync();
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException or ObjectDisposedException or System.Security.Authentication.AuthenticationException)
        {
            client.Dispose();
        }
    }

    private async Task ForwardRequestHeadAsync(Stream from, Stream to)
    {
        var head = new List<byte>();
        var one = new byte[1];
        while (!(head.Count >= 4 && head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n'))
        {
            if (await from.ReadAsync(one, _stop.Token) == 0)
            {
                return;
            }

            head.Add(one[0]);
        }

        var text = Encoding.ASCII.GetString([.. head]).Replace($"Host: 127.0.0.1:{Port}", $"Host: 127.0.0.1:{_targetPort}", StringComparison.OrdinalIgnoreCase);
        await to.WriteAsync(Encoding.ASCII.GetBytes(text), _stop.Token);
    }

    private async Task CopyAsync(Stream from, Stream to)
    {
        try
        {
            await from.CopyToAsync(to, _stop.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
        }
    }
}
