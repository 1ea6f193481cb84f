using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Unicode;
using Broker.Stomp;

namespace Broker.Tests.Infrastructure;

/// <summary>A frame received by <see cref="StompTestClient"/>, copied out of the parser's buffers.</summary>
public sealed record ReceivedFrame(StompCommand Command, IReadOnlyList<KeyValuePair<string, string>> Headers, byte[] Body)
{
    /// <summary>The first value of a header, or null.</summary>
    public string? this[string name] => Headers.FirstOrDefault(h => h.Key == name).Value;

    public string BodyText => Encoding.UTF8.GetString(Body);

    public override string ToString() =>
        $"{Command} {string.Join(", ", Headers.Select(h => $"{h.Key}:{h.Value}"))} [{Body.Length} bytes] {(Body.Length < 300 ? BodyText : "")}";
}

/// <summary>
/// A raw STOMP peer over real loopback sockets (TCP or WebSocket) for integration tests: it sends exactly the bytes or
/// frames it is told to and reports exactly what arrives, so it can also misbehave on purpose.
/// </summary>
public sealed class StompTestClient : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    private readonly Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> _send;
    private readonly Func<ValueTask> _close;
    private readonly Pipe _incoming = new();
    // Lenient limits: the tests judge what the broker sends, not the client's budget.
    private readonly StompParser _parser = new(new StompParserLimits { MaxFrameBytes = 64 * 1024 * 1024, MaxBodyBytes = 64 * 1024 * 1024, MaxHeaders = 100_000, MaxHeaderLineBytes = 1024 * 1024 });
    private readonly Task _pump;
    private readonly CancellationTokenSource _stop = new();
    private readonly Queue<ReceivedFrame> _early = new();
    private int _disposed;

    private StompTestClient(Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> send, Func<ValueTask> close, Func<PipeWriter, CancellationToken, Task> pump)
    {
        _send = send;
        _close = close;
        _pump = Task.Run(async () =>
        {
            try
            {
                await pump(_incoming.Writer, _stop.Token);
            }
            catch (Exception ex) when (ex is IOException or SocketException or WebSocketException or OperationCanceledException or ObjectDisposedException)
            {
            }
            finally
            {
                await _incoming.Writer.CompleteAsync();
            }
        });
    }

    /// <summary>The WebSocket subprotocol the server chose (WebSocket clients only).</summary>
    public string? SubProtocol { get; private init; }

    /// <summary>The headers of the server's WebSocket upgrade response (WebSocket clients only).</summary>
    public IReadOnlyDictionary<string, IEnumerable<string>>? HttpResponseHeaders { get; private init; }

    /// <summary>WebSocket messages received: their type and size, in order (WebSocket clients only).</summary>
    public List<(WebSocketMessageType Type, int Length)> WebSocketMessages { get; } = [];

    /// <summary>The close status the server sent (WebSocket clients only), once the connection is closed.</summary>
    public WebSocketCloseStatus? CloseStatus { get; private set; }

    /// <summary>Heart-beat EOLs received so far.</summary>
    public int HeartBeatsReceived { get; private set; }

    public static async Task<StompTestClient> ConnectTcpAsync(int port, CancellationToken cancellationToken = default)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync("127.0.0.1", port, cancellationToken);
        return FromStream(new NetworkStream(socket, ownsSocket: true));
    }

    /// <summary>A client over an already connected byte stream (such as an <c>SslStream</c>), which it then owns.</summary>
    public static StompTestClient FromStream(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return new StompTestClient(
            async (data, ct) => await stream.WriteAsync(data, ct),
            async () => await stream.DisposeAsync(),
            async (writer, ct) =>
            {
                while (true)
                {
                    var memory = writer.GetMemory(64 * 1024);
                    var read = await stream.ReadAsync(memory, ct);
                    if (read == 0)
                    {
                        return;
                    }

                    writer.Advance(read);
                    await writer.FlushAsync(ct);
                }
            });
    }

    /// <param name="configure">Sets more options before connecting: request headers (Origin, Authorization), TLS validation.</param>
    public static async Task<StompTestClient> ConnectWebSocketAsync(
        Uri uri, string[]? subProtocols = null, bool compression = false, Action<ClientWebSocketOptions>? configure = null, CancellationToken cancellationToken = default)
    {
        var socket = new ClientWebSocket();
        foreach (var protocol in subProtocols ?? ["v12.stomp", "v11.stomp", "v10.stomp"])
        {
            socket.Options.AddSubProtocol(protocol);
        }

        if (compression)
        {
            socket.Options.DangerousDeflateOptions = new WebSocketDeflateOptions();
        }

        socket.Options.CollectHttpResponseDetails = true;
        configure?.Invoke(socket.Options);

        await socket.ConnectAsync(uri, cancellationToken);
        StompTestClient? client = null;
        client = new StompTestClient(
            // As browsers and stomp.js do: text when the bytes are UTF-8 (a text message must be), binary otherwise.
            async (data, ct) => await socket.SendAsync(data, Utf8.IsValid(data.Span) ? WebSocketMessageType.Text : WebSocketMessageType.Binary, endOfMessage: true, ct),
            async () =>
            {
                try
                {
                    if (socket.State == WebSocketState.Open)
                    {
                        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", timeout.Token);
                    }
                }
                catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
                {
                }

                socket.Dispose();
            },
            async (writer, ct) =>
            {
                var length = 0;
                while (true)
                {
                    var memory = writer.GetMemory(64 * 1024);
                    var result = await socket.ReceiveAsync(memory, ct);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        client!.CloseStatus = socket.CloseStatus;
                        if (socket.State == WebSocketState.CloseReceived)
                        {
                            await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", ct);
                        }

                        return;
                    }

                    writer.Advance(result.Count);
                    length += result.Count;
                    if (result.EndOfMessage)
                    {
                        lock (client!.WebSocketMessages)
                        {
                            client.WebSocketMessages.Add((result.MessageType, length));
                        }

                        length = 0;
                    }

                    await writer.FlushAsync(ct);
                }
            })
        {
            SubProtocol = socket.SubProtocol,
            HttpResponseHeaders = socket.HttpResponseHeaders,
        };
        client.WebSocketSender = socket;
        return client;
    }

    /// <summary>The underlying WebSocket, to send binary or split messages on purpose.</summary>
    public ClientWebSocket? WebSocketSender { get; private set; }

    /// <summary>Sends raw bytes.</summary>
    public ValueTask SendRawAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) => _send(data, cancellationToken);

    /// <summary>Sends raw text (UTF-8), e.g. a hand-written frame with "\0".</summary>
    public ValueTask SendRawAsync(string text, CancellationToken cancellationToken = default) => _send(Encoding.UTF8.GetBytes(text), cancellationToken);

    /// <summary>Sends one frame encoded by the codec's writer (STOMP 1.2 escaping).</summary>
    public ValueTask SendFrameAsync(StompCommand command, IEnumerable<(string Name, string Value)> headers, byte[]? body = null, CancellationToken cancellationToken = default)
    {
        var output = new ArrayBufferWriter<byte>();
        StompWriter.WriteCommand(output, command);
        foreach (var (name, value) in headers)
        {
            StompWriter.WriteHeader(output, command, StompVersion.V1_2, name, value);
        }

        StompWriter.WriteBody(output, command, body ?? []);
        return _send(output.WrittenMemory, cancellationToken);
    }

    /// <summary>CONNECT (1.2 by default) and wait for CONNECTED; fails the test on anything else.</summary>
    public async Task<ReceivedFrame> ConnectAsync(string acceptVersion = "1.0,1.1,1.2", string heartBeat = "0,0", params (string Name, string Value)[] extra)
    {
        await SendFrameAsync(StompCommand.Connect, [("accept-version", acceptVersion), ("host", "/"), ("heart-beat", heartBeat), .. extra]);
        var connected = await ReceiveAsync();
        Assert.True(connected.Command == StompCommand.Connected, $"expected CONNECTED, got {connected}");
        return connected;
    }

    /// <summary>
    /// SUBSCRIBE, and wait for its receipt so the subscription is live when this returns. Messages a queue delivers
    /// before the RECEIPT (it already held some) are kept and returned by the next receives.
    /// </summary>
    public async Task SubscribeAsync(string destination, string id, string ack = "auto", params (string Name, string Value)[] extra)
    {
        var receipt = $"sub-{id}-{Guid.NewGuid():N}";
        await SendFrameAsync(StompCommand.Subscribe, [("destination", destination), ("id", id), ("ack", ack), ("receipt", receipt), .. extra]);
        var early = new List<ReceivedFrame>();
        while (true)
        {
            var frame = await ReceiveAsync();
            if (frame.Command == StompCommand.Receipt && frame["receipt-id"] == receipt)
            {
                break;
            }

            Assert.True(frame.Command == StompCommand.Message, $"expected RECEIPT {receipt}, got {frame}");
            early.Add(frame);
        }

        foreach (var frame in early)
        {
            _early.Enqueue(frame);
        }
    }

    /// <summary>SEND, optionally waiting for a receipt.</summary>
    public async Task SendAsync(string destination, string body, bool receipt = false, params (string Name, string Value)[] extra)
    {
        var id = receipt ? $"send-{Guid.NewGuid():N}" : null;
        (string, string)[] headers = id is null ? [("destination", destination), .. extra] : [("destination", destination), ("receipt", id), .. extra];
        await SendFrameAsync(StompCommand.Send, headers, Encoding.UTF8.GetBytes(body));
        if (id is not null)
        {
            await ExpectReceiptAsync(id);
        }
    }

    public async Task ExpectReceiptAsync(string receiptId)
    {
        var frame = await ReceiveAsync();
        Assert.True(frame.Command == StompCommand.Receipt && frame["receipt-id"] == receiptId, $"expected RECEIPT {receiptId}, got {frame}");
    }

    /// <summary>The next frame (heart-beats are counted, not returned); fails the test on timeout or close.</summary>
    public async Task<ReceivedFrame> ReceiveAsync(TimeSpan? timeout = null)
    {
        var frame = await TryReceiveAsync(timeout ?? DefaultTimeout);
        Assert.True(frame is not null, "expected a frame, but the connection closed or nothing arrived in time");
        return frame!;
    }

    /// <summary>The next frame, or null when the connection closes or nothing arrives in time.</summary>
    public async Task<ReceivedFrame?> TryReceiveAsync(TimeSpan timeout)
    {
        if (_early.TryDequeue(out var early))
        {
            return early;
        }

        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            ReadResult result;
            try
            {
                result = await _incoming.Reader.ReadAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                return null;
            }

            var buffer = result.Buffer;
            var returned = false;
            try
            {
                while (_parser.TryParse(ref buffer, out var frame))
                {
                    if (frame.IsHeartBeat)
                    {
                        HeartBeatsReceived++;
                        continue;
                    }

                    returned = true;
                    return new ReceivedFrame(frame.Command, frame.Headers.ToList(), frame.Body.ToArray());
                }

                if (result.IsCompleted)
                {
                    return null;
                }
            }
            finally
            {
                // Frames may remain after the one returned: only a partial frame counts as examined, or the next
                // read would wait for new bytes while whole frames sit in the pipe.
                if (returned)
                {
                    _incoming.Reader.AdvanceTo(buffer.Start);
                }
                else
                {
                    _incoming.Reader.AdvanceTo(buffer.Start, buffer.End);
                }
            }
        }
    }

    /// <summary>Asserts the next frame is an ERROR and returns it.</summary>
    public async Task<ReceivedFrame> ExpectErrorAsync()
    {
        var frame = await ReceiveAsync();
        Assert.True(frame.Command == StompCommand.Error, $"expected ERROR, got {frame}");
        Assert.False(string.IsNullOrEmpty(frame["message"]), "an ERROR frame must carry a message header");
        return frame;
    }

    /// <summary>Asserts the server closes the connection (after any frames, which are returned).</summary>
    public async Task<List<ReceivedFrame>> ExpectClosedAsync(TimeSpan? timeout = null)
    {
        var frames = new List<ReceivedFrame>(_early);
        _early.Clear();
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (DateTime.UtcNow < deadline)
        {
            var remaining = deadline - DateTime.UtcNow;
            using var cts = new CancellationTokenSource(remaining);
            ReadResult result;
            try
            {
                result = await _incoming.Reader.ReadAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            var buffer = result.Buffer;
            try
            {
                while (_parser.TryParse(ref buffer, out var frame))
                {
                    if (!frame.IsHeartBeat)
                    {
                        frames.Add(new ReceivedFrame(frame.Command, frame.Headers.ToList(), frame.Body.ToArray()));
                    }
                }

                if (result.IsCompleted)
                {
                    await _pump;
                    return frames;
                }
            }
            finally
            {
                _incoming.Reader.AdvanceTo(buffer.Start, buffer.End);
            }
        }

        Assert.Fail($"expected the server to close the connection; it stayed open. Frames seen: {string.Join(" | ", frames)}");
        return frames;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return; // a test may drop a connection on purpose and still hold it in an 'await using'
        }

        await _close();
        await _stop.CancelAsync();
        try
        {
            await _pump.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (TimeoutException)
        {
        }

        _parser.Dispose();
        _stop.Dispose();
    }
}
