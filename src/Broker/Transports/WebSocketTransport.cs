using System.Buffers;
using System.IO.Pipelines;
using System.Net.WebSockets;
using System.Text.Unicode;

namespace Broker.Transports;

/// <summary>
/// STOMP over a WebSocket: message payloads, text or binary, are fed into one pipe and parsed as a byte stream, so a
/// frame split over several messages and several frames in one message both work. Each outgoing frame is one message:
/// text when it is valid UTF-8 without NUL in its body, binary otherwise.
/// <para>
/// An idle connection holds no buffer: the receive loop waits for the next message with a zero-byte read before it
/// asks the pipe for memory, and the output buffer is rented for a flush and given back after it.
/// </para>
/// </summary>
internal sealed class WebSocketTransport : StompTransport
{
    private static readonly TimeSpan CloseHandshakeTimeout = TimeSpan.FromSeconds(5);

    // Receive and output buffer size: most frames fit; bigger ones take several receives, or grow the output buffer.
    private const int BufferSize = 16 * 1024;

    private readonly WebSocket _socket;
    private readonly Pipe _input;
    private readonly PooledBufferWriter _output = new(BufferSize);
    private readonly List<int> _frameEnds = [];
    private readonly int _compressionThreshold;
    private Task _receiving = Task.CompletedTask;

    // One PipeOptions for all connections (they share the frame limit), not one per connection.
    private static PipeOptions? s_inputOptions;

    public WebSocketTransport(WebSocket socket, string remoteAddress, int maxFrameBytes, int compressionThreshold)
    {
        _socket = socket;
        RemoteAddress = remoteAddress;
        _compressionThreshold = compressionThreshold;
        // The pipe must hold a whole frame before the parser can take it; the parser bounds it at the frame limit.
        var pause = (long)maxFrameBytes + (64 * 1024);
        var options = s_inputOptions;
        if (options?.PauseWriterThreshold != pause)
        {
            s_inputOptions = options = new PipeOptions(pauseWriterThreshold: pause, resumeWriterThreshold: pause / 2, useSynchronizationContext: false);
        }

        _input = new Pipe(options);
    }

    public override string Name => "ws";

    /// <summary>Set from the chosen subprotocol: v10.stomp and v11.stomp name the STOMP version the client speaks.</summary>
    public override Stomp.StompVersion? MaxVersion => SubProtocol switch
    {
        "v10.stomp" => Stomp.StompVersion.V1_0,
        "v11.stomp" => Stomp.StompVersion.V1_1,
        _ => null,
    };

    /// <summary>The WebSocket subprotocol agreed in the handshake, if any.</summary>
    public string? SubProtocol { get; init; }

    public override string RemoteAddress { get; }

    public override PipeReader Input => _input.Reader;

    public override IBufferWriter<byte> Output => _output;

    public void StartReceiving(CancellationToken cancellationToken) => _receiving = ReceiveAsync(cancellationToken);

    public override void EndFrame() => _frameEnds.Add(_output.WrittenCount);

    public override async ValueTask<bool> FlushAsync(CancellationToken cancellationToken)
    {
        try
        {
            var start = 0;
            foreach (var end in _frameEnds)
            {
                var frame = _output.WrittenMemory[start..end];
                var span = frame.Span;
                var isText = span[..^1].IndexOf((byte)0) < 0 && Utf8.IsValid(span);
                var flags = WebSocketMessageFlags.EndOfMessage;
                if (frame.Length < _compressionThreshold)
                {
                    flags |= WebSocketMessageFlags.DisableCompression;
                }

                await _socket.SendAsync(frame, isText ? WebSocketMessageType.Text : WebSocketMessageType.Binary, flags, cancellationToken);
                start = end;
            }

            return true;
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            // Every send has completed (or failed): the buffer goes back to the pool until the next flush.
            _frameEnds.Clear();
            _output.Reset();
        }
    }

    public override void Abort() => _socket.Abort();

    public override async ValueTask CloseAsync(CloseReason reason, CancellationToken cancellationToken)
    {
        var (status, description) = reason switch
        {
            CloseReason.Disconnect or CloseReason.PeerClosed => (WebSocketCloseStatus.NormalClosure, "bye"),
            CloseReason.ProtocolError => (WebSocketCloseStatus.ProtocolError, "STOMP protocol error"),
            CloseReason.Policy => (WebSocketCloseStatus.PolicyViolation, "policy violation"),
            CloseReason.TooBig => (WebSocketCloseStatus.MessageTooBig, "frame too large"),
            _ => (WebSocketCloseStatus.EndpointUnavailable, "server shutting down"),
        };

        try
        {
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(CloseHandshakeTimeout);
                await _socket.CloseOutputAsync(status, description, timeout.Token);
                // Let the client answer the close so the handshake completes; the receive loop sees it.
                await _receiving.WaitAsync(CloseHandshakeTimeout, cancellationToken);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or TimeoutException or IOException or ObjectDisposedException)
        {
            _socket.Abort();
        }
    }

    private async Task ReceiveAsync(CancellationToken cancellationToken)
    {
        var writer = _input.Writer;
        try
        {
            var messageEnded = true;
            while (true)
            {
                // Between messages, wait with a zero-byte read: the pipe hands out memory (which stays rented while
                // the receive is pending) only once a message has begun to arrive.
                if (messageEnded)
                {
                    var next = await _socket.ReceiveAsync(Memory<byte>.Empty, cancellationToken);
                    if (next.MessageType == WebSocketMessageType.Close)
                    {
                        break;
                    }

                    if (next.EndOfMessage)
                    {
                        continue; // an empty message, consumed whole
                    }
                }

                var memory = writer.GetMemory(BufferSize);
                var result = await _socket.ReceiveAsync(memory, cancellationToken);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }

                messageEnded = result.EndOfMessage;

                writer.Advance(result.Count);
                var flushed = await writer.FlushAsync(cancellationToken);
                if (flushed.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            // The peer went away or the server is stopping: the session sees the end of input.
        }
        finally
        {
            await writer.CompleteAsync();
        }
    }
}
