using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Broker.Load.Connections;

/// <summary>
/// A minimal RFC 6455 client over a raw socket. Every STOMP frame is its own WebSocket message, as stomp.js sends
/// them, but all messages of one flush go out in one socket write, so the tool (not its WebSocket library's one
/// syscall per message) is never what limits a WebSocket run. Client frames carry a mask key of zero: valid, and
/// the server unmasks exactly as with any other key. Server frames are unwrapped into one STOMP byte stream.
/// </summary>
internal sealed class WebSocketFrameTransport : FrameTransport
{
    private readonly Socket _socket;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly ArrayBufferWriter<byte> _framed = new(16 * 1024);
    private byte[] _raw = new byte[4096];
    private int _rawStart;
    private int _rawEnd;
    private long _payloadLeft;
    private bool _closed;

    private WebSocketFrameTransport(Socket socket) => _socket = socket;

    public static async Task<FrameTransport> UpgradeAsync(Socket socket, Uri url, CancellationToken cancellationToken)
    {
        var transport = new WebSocketFrameTransport(socket);
        try
        {
            var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
            var request = $"GET {url.PathAndQuery} HTTP/1.1\r\nHost: {url.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
                $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v12.stomp, v11.stomp\r\n" +
                $"Origin: http://{url.Authority}\r\n\r\n";
            await SendAllAsync(socket, Encoding.ASCII.GetBytes(request), cancellationToken);

            // The response head; what follows it is already WebSocket data.
            int headEnd;
            while ((headEnd = transport._raw.AsSpan(0, transport._rawEnd).IndexOf("\r\n\r\n"u8)) < 0)
            {
                if (transport._rawEnd == transport._raw.Length)
                {
                    throw new IOException("the WebSocket upgrade response is too long");
                }

                var read = await socket.ReceiveAsync(transport._raw.AsMemory(transport._rawEnd), SocketFlags.None, cancellationToken);
                if (read == 0)
                {
                    throw new IOException("the broker closed the connection during the WebSocket upgrade");
                }

                transport._rawEnd += read;
            }

            var head = Encoding.ASCII.GetString(transport._raw, 0, headEnd);
            if (!head.StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
            {
                throw new IOException($"WebSocket upgrade refused: {head.Split("\r\n")[0]}");
            }

            transport._rawStart = headEnd + 4;
            return transport;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public override async ValueTask SendAsync(ReadOnlyMemory<byte> data, IReadOnlyList<int> frameEnds, CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken);
        try
        {
            var start = 0;
            foreach (var end in frameEnds)
            {
                WriteMessage(_framed, opcode: 0x1, data.Span[start..end]);
                start = end;
            }

            if (start < data.Length)
            {
                WriteMessage(_framed, opcode: 0x1, data.Span[start..]);
            }

            await SendAllAsync(_socket, _framed.WrittenMemory, cancellationToken);
        }
        finally
        {
            _framed.ResetWrittenCount();
            _sendLock.Release();
        }
    }

    public override async ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (!_closed)
        {
            var copied = Unwrap(buffer.Span);
            if (copied > 0)
            {
                return copied;
            }

            if (_closed)
            {
                break;
            }

            if (_rawStart > 0)
            {
                _raw.AsSpan(_rawStart, _rawEnd - _rawStart).CopyTo(_raw);
                (_rawEnd, _rawStart) = (_rawEnd - _rawStart, 0);
            }

            if (_rawEnd == _raw.Length)
            {
                Array.Resize(ref _raw, _raw.Length * 2);
            }
            else if (_raw.Length < 64 * 1024)
            {
                // The 4 KiB of the upgrade grow to a streaming buffer on the first data read.
                Array.Resize(ref _raw, 64 * 1024);
            }

            var read = await _socket.ReceiveAsync(_raw.AsMemory(_rawEnd), SocketFlags.None, cancellationToken);
            if (read == 0)
            {
                return 0;
            }

            _rawEnd += read;
            await AnswerPingsAsync(cancellationToken);
        }

        return 0;
    }

    public override ValueTask DisposeAsync()
    {
        _socket.Dispose();
        _sendLock.Dispose();
        return ValueTask.CompletedTask;
    }

    // Copies payload bytes from the raw buffer into destination, stepping over frame headers. Control frames are
    // left for AnswerPingsAsync (a ping) or end the stream (a close).
    private int Unwrap(Span<byte> destination)
    {
        var copied = 0;
        while (copied < destination.Length)
        {
            if (_payloadLeft > 0)
            {
                var n = (int)Math.Min(_payloadLeft, Math.Min(destination.Length - copied, _rawEnd - _rawStart));
                if (n == 0)
                {
                    break;
                }

                _raw.AsSpan(_rawStart, n).CopyTo(destination[copied..]);
                (_rawStart, _payloadLeft, copied) = (_rawStart + n, _payloadLeft - n, copied + n);
                continue;
            }

            if (!TryReadHeader(out var opcode, out var length, out var headerLength))
            {
                break;
            }

            if (opcode >= 0x8)
            {
                if (opcode == 0x8)
                {
                    _closed = true;
                    break;
                }

                if (_rawEnd - _rawStart < headerLength + length)
                {
                    break; // a whole control frame first
                }

                if (opcode == 0x9)
                {
                    _pendingPong ??= [];
                    _pendingPong.Add(_raw.AsSpan(_rawStart + headerLength, (int)length).ToArray());
                }

                _rawStart += headerLength + (int)length;
                continue;
            }

            _rawStart += headerLength;
            _payloadLeft = length;
        }

        return copied;
    }

    private List<byte[]>? _pendingPong;

    private async ValueTask AnswerPingsAsync(CancellationToken cancellationToken)
    {
        if (_pendingPong is not { Count: > 0 } pings)
        {
            return;
        }

        _pendingPong = null;
        await _sendLock.WaitAsync(cancellationToken);
        try
        {
            var pong = new ArrayBufferWriter<byte>();
            foreach (var payload in pings)
            {
                WriteMessage(pong, opcode: 0xA, payload);
            }

            await SendAllAsync(_socket, pong.WrittenMemory, cancellationToken);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private bool TryReadHeader(out int opcode, out long length, out int headerLength)
    {
        (opcode, length, headerLength) = (0, 0, 0);
        var available = _raw.AsSpan(_rawStart, _rawEnd - _rawStart);
        if (available.Length < 2)
        {
            return false;
        }

        opcode = available[0] & 0x0F;
        var masked = (available[1] & 0x80) != 0;
        length = available[1] & 0x7F;
        headerLength = 2;
        if (length == 126)
        {
            if (available.Length < 4)
            {
                return false;
            }

            length = BinaryPrimitives.ReadUInt16BigEndian(available[2..]);
            headerLength = 4;
        }
        else if (length == 127)
        {
            if (available.Length < 10)
            {
                return false;
            }

            length = (long)BinaryPrimitives.ReadUInt64BigEndian(available[2..]);
            headerLength = 10;
        }

        if (masked)
        {
            throw new IOException("the server sent a masked WebSocket frame");
        }

        return available.Length >= headerLength;
    }

    private static void WriteMessage(ArrayBufferWriter<byte> output, byte opcode, ReadOnlySpan<byte> payload)
    {
        var header = output.GetSpan(14);
        header[0] = (byte)(0x80 | opcode);
        int at;
        if (payload.Length < 126)
        {
            header[1] = (byte)(0x80 | payload.Length);
            at = 2;
        }
        else if (payload.Length <= ushort.MaxValue)
        {
            header[1] = 0x80 | 126;
            BinaryPrimitives.WriteUInt16BigEndian(header[2..], (ushort)payload.Length);
            at = 4;
        }
        else
        {
            header[1] = 0x80 | 127;
            BinaryPrimitives.WriteUInt64BigEndian(header[2..], (ulong)payload.Length);
            at = 10;
        }

        header.Slice(at, 4).Clear(); // mask key 0: the payload goes as it is
        output.Advance(at + 4);
        output.Write(payload);
    }

    private static async ValueTask SendAllAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            data = data[await socket.SendAsync(data, SocketFlags.None, cancellationToken)..];
        }
    }
}
