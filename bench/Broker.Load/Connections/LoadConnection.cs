using System.Buffers;
using System.Net;
using System.Text;
using Broker.Stomp;

namespace Broker.Load.Connections;

/// <summary>Called for every frame a connection receives; the frame is valid only during the call.</summary>
internal interface IFrameHandler
{
    void OnFrame(in StompFrame frame);
}

/// <summary>
/// One STOMP connection of the load tool. Frames are written into <see cref="Output"/> and sent together by
/// <see cref="FlushAsync"/> (one send for TCP, one message per frame for WebSocket); received bytes are parsed in place
/// and handed to an <see cref="IFrameHandler"/>, without a copy or an allocation per frame.
/// </summary>
internal sealed class LoadConnection : IAsyncDisposable
{
    private readonly FrameTransport _transport;
    private readonly ArrayBufferWriter<byte> _output = new(16 * 1024);
    private readonly List<int> _frameEnds = [];
    private readonly StompParser _parser = new();
    private byte[] _receiveBuffer;
    private int _received;

    private LoadConnection(FrameTransport transport, byte[] receiveBuffer)
    {
        _transport = transport;
        _receiveBuffer = receiveBuffer;
    }

    public StompVersion Version { get; private set; } = StompVersion.V1_2;

    public IBufferWriter<byte> Output => _output;

    public int PendingBytes => _output.WrittenCount;

    /// <summary>Connects, sends CONNECT and waits for CONNECTED. An ERROR instead is thrown with its message.</summary>
    public static async Task<LoadConnection> OpenAsync(LoadOptions options, IPAddress source, CancellationToken cancellationToken)
    {
        var transport = await FrameTransport.ConnectAsync(options.Url, source, cancellationToken);
        var connection = new LoadConnection(transport, new byte[4096]);
        try
        {
            var output = connection._output;
            StompWriter.WriteCommand(output, StompCommand.Connect);
            WriteHeader(output, StompCommand.Connect, "accept-version", "1.1,1.2");
            WriteHeader(output, StompCommand.Connect, "host", options.Host);
            WriteHeader(output, StompCommand.Connect, "login", options.Login);
            WriteHeader(output, StompCommand.Connect, "passcode", options.Passcode);
            WriteHeader(output, StompCommand.Connect, "heart-beat", "0,0");
            StompWriter.WriteEnd(output);
            connection.EndFrame();
            await connection.FlushAsync(cancellationToken);

            var handshake = new HandshakeHandler();
            while (handshake.Outcome is null)
            {
                if (!await connection.ReceiveOnceAsync(handshake, cancellationToken))
                {
                    throw new IOException("the broker closed the connection before CONNECTED");
                }
            }

            if (handshake.Outcome != "")
            {
                throw new IOException(handshake.Outcome);
            }

            connection.Version = handshake.Version;
            connection._parser.Version = handshake.Version;
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    public static void WriteHeader(IBufferWriter<byte> output, StompCommand command, string name, string value) =>
        StompWriter.WriteHeader(output, command, StompVersion.V1_2, name, value);

    /// <summary>Marks the end of a frame written into <see cref="Output"/> (the WebSocket message boundary).</summary>
    public void EndFrame() => _frameEnds.Add(_output.WrittenCount);

    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        if (_output.WrittenCount == 0)
        {
            return;
        }

        await _transport.SendAsync(_output.WrittenMemory, _frameEnds, cancellationToken);

        _output.ResetWrittenCount();
        _frameEnds.Clear();
    }

    /// <summary>Receives and dispatches frames until the peer closes or <paramref name="cancellationToken"/> fires.</summary>
    public async Task ReceiveLoopAsync(IFrameHandler handler, CancellationToken cancellationToken)
    {
        if (_receiveBuffer.Length < 256 * 1024)
        {
            var bigger = new byte[256 * 1024];
            _receiveBuffer.AsSpan(0, _received).CopyTo(bigger);
            _receiveBuffer = bigger;
        }

        while (await ReceiveOnceAsync(handler, cancellationToken))
        {
        }
    }

    // One read, then every whole frame in the buffer; the partial rest moves to the front.
    private async ValueTask<bool> ReceiveOnceAsync(IFrameHandler handler, CancellationToken cancellationToken)
    {
        if (_received == _receiveBuffer.Length)
        {
            Array.Resize(ref _receiveBuffer, _receiveBuffer.Length * 2);
        }

        var read = await _transport.ReceiveAsync(_receiveBuffer.AsMemory(_received), cancellationToken);
        if (read == 0)
        {
            return false;
        }

        _received += read;
        var input = new ReadOnlySequence<byte>(_receiveBuffer, 0, _received);
        while (_parser.TryParse(ref input, out var frame))
        {
            if (!frame.IsHeartBeat)
            {
                handler.OnFrame(frame);
            }
        }

        var consumed = _received - (int)input.Length;
        if (consumed > 0)
        {
            _receiveBuffer.AsSpan(consumed, _received - consumed).CopyTo(_receiveBuffer);
            _received -= consumed;
        }

        return true;
    }

    public ValueTask DisposeAsync()
    {
        _parser.Dispose();
        return _transport.DisposeAsync();
    }

    /// <summary>Reads an ERROR frame's message (and body) for a report.</summary>
    public static string DescribeError(in StompFrame frame)
    {
        var message = frame.Headers.GetString("message") ?? "(no message header)";
        var body = frame.Body.IsEmpty ? "" : ": " + Encoding.UTF8.GetString(frame.Body).Trim();
        return $"ERROR {message}{(body.Length > 200 ? body[..200] + "…" : body)}";
    }

    private sealed class HandshakeHandler : IFrameHandler
    {
        /// <summary>Null while waiting; "" when CONNECTED; otherwise what went wrong.</summary>
        public string? Outcome { get; private set; }

        public StompVersion Version { get; private set; } = StompVersion.V1_2;

        public void OnFrame(in StompFrame frame)
        {
            if (Outcome is not null)
            {
                return;
            }

            if (frame.Command == StompCommand.Connected && frame.Headers.GetString("version") == "1.1")
            {
                Version = StompVersion.V1_1;
            }

            Outcome = frame.Command switch
            {
                StompCommand.Connected => "",
                StompCommand.Error => DescribeError(frame),
                _ => $"expected CONNECTED, got {frame.Command}",
            };
        }
    }
}
