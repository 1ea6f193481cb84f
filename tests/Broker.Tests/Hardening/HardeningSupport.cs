using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Broker.Diagnostics;
using Broker.Sessions;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Hardening;

/// <summary>
/// The counters of one broker's own meter. Each broker gets its meter from its own <see cref="IMeterFactory"/>, so
/// listening to that instance (not to every meter named "StompBroker") attributes each measurement to the broker under
/// test even when other brokers run in the same process. Only measurements made after construction are seen.
/// </summary>
internal sealed class MetricsRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _totals = new(StringComparer.Ordinal);

    public MetricsRecorder(BrokerServer server)
    {
        var meter = server.GetService<BrokerMetrics>().Meter;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter, meter))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            _totals.AddOrUpdate(instrument.Name, value, (_, total) => total + value);
            foreach (var tag in tags)
            {
                _totals.AddOrUpdate($"{instrument.Name}|{tag.Key}={tag.Value}", value, (_, total) => total + value);
            }
        });
        _listener.Start();
    }

    /// <summary>The sum of an instrument's measurements, optionally only those with one tag value.</summary>
    public long Get(string instrument, string? tag = null, string? value = null) =>
        _totals.TryGetValue(tag is null ? instrument : $"{instrument}|{tag}={value}", out var total) ? total : 0;

    /// <summary>stompbroker.limits.breached for one limit.</summary>
    public long Breaches(string limit) => Get("stompbroker.limits.breached", "limit", limit);

    public void Dispose() => _listener.Dispose();
}

/// <summary>A bare TCP socket for hostile clients: optional local address, small receive buffer, reads only when asked.</summary>
internal sealed class RawSocket : IDisposable
{
    private readonly StompParser _parser = ServerFrames.CreateParser();
    private readonly ArrayBufferWriter<byte> _pending = new();
    private readonly byte[] _buffer = new byte[16 * 1024];

    private RawSocket(Socket socket) => Socket = socket;

    public Socket Socket { get; }

    /// <summary>Bytes received and not yet returned as frames.</summary>
    public int PendingBytes => _pending.WrittenCount;

    public static async Task<RawSocket> ConnectAsync(int port, IPAddress? localAddress = null, int receiveBufferSize = 0, CancellationToken cancellationToken = default)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (receiveBufferSize > 0)
        {
            socket.ReceiveBufferSize = receiveBufferSize; // before connecting, so the window is small from the start
        }

        if (localAddress is not null)
        {
            socket.Bind(new IPEndPoint(localAddress, 0));
        }

        await socket.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
        return new RawSocket(socket);
    }

    /// <summary>Sends bytes; false when the server has closed the connection.</summary>
    public async Task<bool> TrySendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        try
        {
            await Socket.SendAsync(data, SocketFlags.None, cancellationToken);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    public Task<bool> TrySendAsync(string text) => TrySendAsync(Encoding.UTF8.GetBytes(text));

    /// <summary>The next frame (heart-beats skipped), or null when the connection ends or nothing arrives in time.</summary>
    public async Task<ReceivedFrame?> ReadFrameAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            if (TryParse(out var frame))
            {
                return frame;
            }

            int read;
            try
            {
                read = await Socket.ReceiveAsync(_buffer, SocketFlags.None, cts.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException)
            {
                return null;
            }

            if (read == 0)
            {
                return null;
            }

            _pending.Write(_buffer.AsSpan(0, read));
        }
    }

    /// <summary>
    /// Reads until the server closes the connection; null if it is still open at the deadline. The frames received
    /// are returned whether the close was orderly (FIN) or a reset.
    /// </summary>
    public async Task<ServerEnd?> ReadUntilClosedAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var reset = false;
        while (true)
        {
            int read;
            try
            {
                read = await Socket.ReceiveAsync(_buffer, SocketFlags.None, cts.Token);
            }
            catch (OperationCanceledException)
            {
                return null;
            }
            catch (SocketException)
            {
                reset = true;
                break;
            }

            if (read == 0)
            {
                break;
            }

            _pending.Write(_buffer.AsSpan(0, read));
        }

        return ServerFrames.Parse(_pending.WrittenMemory, reset);
    }

    /// <summary>Whether the server has closed the connection, found by writing EOLs (heart-beats) until a write fails.</summary>
    public async Task<bool> WaitForServerCloseAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (!await TrySendAsync("\n"u8.ToArray()))
            {
                return true;
            }

            await Task.Delay(50);
        }

        return false;
    }

    public void Dispose()
    {
        Socket.Dispose();
        _parser.Dispose();
    }

    private bool TryParse(out ReceivedFrame? frame)
    {
        frame = null;
        var buffer = new ReadOnlySequence<byte>(_pending.WrittenMemory);
        var start = buffer.Length;
        try
        {
            while (_parser.TryParse(ref buffer, out var parsed))
            {
                if (!parsed.IsHeartBeat)
                {
                    frame = new ReceivedFrame(parsed.Command, parsed.Headers.ToList(), parsed.Body.ToArray());
                    ServerFrames.Follow(_parser, frame);
                    return true;
                }
            }

            return false;
        }
        finally
        {
            var rest = buffer.ToArray();
            if (rest.Length != start)
            {
                _pending.Clear();
                _pending.Write(rest);
            }
        }
    }
}

/// <summary>
/// How a connection ended: the frames the server sent, whether it was reset, unparsed bytes left over, and why the
/// server's bytes did not parse, if they did not (the received bytes in hex then follow).
/// </summary>
internal sealed record ServerEnd(List<ReceivedFrame> Frames, bool Reset, int LeftoverBytes, string? ParseError = null);

/// <summary>
/// Parses what a server sent on one connection: before CONNECTED without unescaping (nothing is negotiated yet, and
/// the broker may write those frames 1.0 style, raw backslashes included), then in the version CONNECTED names.
/// </summary>
internal static class ServerFrames
{
    public static StompParser CreateParser() => new(new StompParserLimits { MaxFrameBytes = 64 * 1024 * 1024, MaxBodyBytes = 64 * 1024 * 1024, MaxHeaders = 100_000, MaxHeaderLineBytes = 1024 * 1024 })
    {
        Version = StompVersion.V1_0,
    };

    public static ServerEnd Parse(ReadOnlyMemory<byte> data, bool reset)
    {
        using var parser = CreateParser();
        var buffer = new ReadOnlySequence<byte>(data);
        var frames = new List<ReceivedFrame>();
        try
        {
            while (parser.TryParse(ref buffer, out var parsed))
            {
                if (!parsed.IsHeartBeat)
                {
                    var frame = new ReceivedFrame(parsed.Command, parsed.Headers.ToList(), parsed.Body.ToArray());
                    frames.Add(frame);
                    Follow(parser, frame);
                }
            }
        }
        catch (StompProtocolException ex)
        {
            return new ServerEnd(frames, reset, (int)buffer.Length, $"{ex.Message}; received {Convert.ToHexString(data.Span)}");
        }

        return new ServerEnd(frames, reset, (int)buffer.Length);
    }

    /// <summary>After CONNECTED, frames are escaped as the negotiated version says (1.0: not at all).</summary>
    public static void Follow(StompParser parser, ReceivedFrame frame)
    {
        if (frame.Command == StompCommand.Connected && StompVersions.TryParse(frame["version"] ?? "1.0", out var version))
        {
            parser.Version = version;
        }
    }
}

/// <summary>WebSocket clients the standard helpers cannot make: from another local address, with a small receive buffer, or refused.</summary>
internal static class WebSockets
{
    /// <summary>Opens a STOMP WebSocket; on a refused upgrade returns the socket with its HTTP status and no connection.</summary>
    public static async Task<(ClientWebSocket Socket, HttpStatusCode Status)> TryOpenAsync(Uri uri, IPAddress? localAddress = null, int receiveBufferSize = 0)
    {
        var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("v12.stomp");
        socket.Options.CollectHttpResponseDetails = true;
        using var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, cancellationToken) =>
            {
                var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                if (receiveBufferSize > 0)
                {
                    tcp.ReceiveBufferSize = receiveBufferSize;
                }

                if (localAddress is not null)
                {
                    tcp.Bind(new IPEndPoint(localAddress, 0));
                }

                await tcp.ConnectAsync(context.DnsEndPoint, cancellationToken);
                return new NetworkStream(tcp, ownsSocket: true);
            },
        };
        using var invoker = new HttpMessageInvoker(handler, disposeHandler: false);
        using var timeout = new CancellationTokenSource(StompTestClient.DefaultTimeout);
        try
        {
            await socket.ConnectAsync(uri, invoker, timeout.Token);
        }
        catch (WebSocketException)
        {
        }

        return (socket, socket.HttpStatusCode);
    }

    /// <summary>Sends one text message (binary when it is not UTF-8).</summary>
    public static async Task SendAsync(ClientWebSocket socket, byte[] data, CancellationToken cancellationToken = default) =>
        await socket.SendAsync(data, System.Text.Unicode.Utf8.IsValid(data) ? WebSocketMessageType.Text : WebSocketMessageType.Binary, endOfMessage: true, cancellationToken);

    /// <summary>Reads one whole message (a STOMP frame, as the broker sends one per message).</summary>
    public static async Task<byte[]?> ReceiveMessageAsync(ClientWebSocket socket, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var buffer = new byte[64 * 1024];
        var message = new MemoryStream();
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, cts.Token);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return null;
            }

            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage)
            {
                return message.ToArray();
            }
        }
    }
}

/// <summary>Process-wide memory, as the in-process broker uses it.</summary>
internal static class Memory
{
    /// <summary>Managed heap bytes after full, compacting collections.</summary>
    public static long Settled()
    {
        for (var i = 0; i < 3; i++)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }

        return GC.GetTotalMemory(forceFullCollection: true);
    }

    public static string Mb(long bytes) => $"{bytes / (1024.0 * 1024.0):0.0} MB";
}

internal static class HardeningServerExtensions
{
    /// <summary>Waits until the broker has no sessions and no connections counted against its limits.</summary>
    public static async Task WaitForNoConnectionsAsync(this BrokerServer server, TimeSpan? timeout = null)
    {
        var registry = server.GetService<SessionRegistry>();
        await Wait.UntilAsync(
            () => registry.Count == 0 && registry.ConnectionCount == 0,
            timeout ?? TimeSpan.FromSeconds(30),
            $"the broker to have no connections (sessions {registry.Count}, counted {registry.ConnectionCount})");
    }

    /// <summary>Waits until the broker counts exactly <paramref name="count"/> connections.</summary>
    public static async Task WaitForConnectionCountAsync(this BrokerServer server, int count)
    {
        var registry = server.GetService<SessionRegistry>();
        await Wait.UntilAsync(() => registry.ConnectionCount == count, TimeSpan.FromSeconds(15), $"{count} connections counted (now {registry.ConnectionCount})");
    }
}

/// <summary>
/// Tests that run alone, after every parallel test: the memory test measures the whole process, and the floods
/// (fuzzing, clients that never read) would load the two-core machine enough to starve other tests' timing (heart-beats
/// checked to 600 ms).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RunAloneGroup
{
    public const string Name = "Hardening: run alone";
}
