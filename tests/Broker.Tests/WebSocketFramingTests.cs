using System.Buffers.Binary;
using System.IO.Compression;
using System.Net.Sockets;
using System.Text;
using Broker.Tests.Infrastructure;

namespace Broker.Tests;

/// <summary>
/// The broker's own RFC 6455 framing, frame by frame from a raw socket: what it must refuse (close 1002 or 1007, then
/// the socket), what it must answer (ping, close), and messages cut at awkward places.
/// </summary>
public sealed class WebSocketFramingTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private const byte Continuation = 0x0, Text = 0x1, Binary = 0x2, Close = 0x8, Ping = 0x9, Pong = 0xA;

    private static readonly byte[] ConnectFrame = "CONNECT\naccept-version:1.2\nhost:/\n\n\0"u8.ToArray();

    private BrokerServer Server => broker.Server;

    public static TheoryData<string, byte[]> ViolationsOfRfc6455 => new()
    {
        { "unmasked", RawWebSocket.Frame(Text, ConnectFrame, masked: false) },
        { "reserved opcode 3", RawWebSocket.Frame(0x3, [1, 2, 3]) },
        { "reserved opcode 11", RawWebSocket.Frame(0xB, []) },
        { "RSV2 set", RawWebSocket.Frame(Text, ConnectFrame, rsv: 0x20) },
        { "RSV1 without permessage-deflate", RawWebSocket.Frame(Text, ConnectFrame, rsv: 0x40) },
        { "ping over 125 bytes", RawWebSocket.Frame(Ping, new byte[126]) },
        { "fragmented ping", RawWebSocket.Frame(Ping, [1], fin: false) },
        { "continuation with no message begun", RawWebSocket.Frame(Continuation, ConnectFrame) },
        { "new message inside a fragmented one", [.. RawWebSocket.Frame(Text, ConnectFrame[..5], fin: false), .. RawWebSocket.Frame(Text, ConnectFrame[5..])] },
        { "close with one byte", RawWebSocket.Frame(Close, [0x03]) },
        { "close with code 1005", RawWebSocket.Frame(Close, [0x03, 0xED]) },
        { "close with code 999", RawWebSocket.Frame(Close, [0x03, 0xE7]) },
        { "length with the top bit set", [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0] },
    };

    [Theory]
    [MemberData(nameof(ViolationsOfRfc6455))]
    public async Task A_protocol_violation_gets_close_1002_and_the_socket_is_closed(string violation, byte[] frame)
    {
        using var peer = await RawWebSocket.OpenAsync(Server.WebSocketPort);
        await peer.SendRawAsync(frame);
        var close = await peer.ReceiveAsync();
        Assert.True(close.Opcode == Close, $"{violation}: expected a close frame, got opcode {close.Opcode}");
        Assert.Equal(1002, close.CloseCode);
        Assert.False(string.IsNullOrEmpty(close.CloseReason), "the close frame says why");
        Assert.True(await peer.IsClosedByServerAsync(), $"{violation}: the socket stays open");
        await AssertBrokerStillServesAsync();
    }

    [Fact]
    public async Task Invalid_utf8_in_a_text_message_gets_close_1007()
    {
        using var peer = await RawWebSocket.OpenAsync(Server.WebSocketPort);
        byte[] invalid = [.. "CONNECT\naccept-version:1.2\nhost:"u8, 0xC3, 0x28, .. "\n\n\0"u8];
        await peer.SendRawAsync(RawWebSocket.Frame(Text, invalid));
        var close = await peer.ReceiveAsync();
        Assert.Equal(Close, close.Opcode);
        Assert.Equal(1007, close.CloseCode);
        Assert.True(await peer.IsClosedByServerAsync());
    }

    [Fact]
    public async Task A_text_message_ending_inside_a_utf8_sequence_gets_close_1007()
    {
        using var peer = await RawWebSocket.OpenAsync(Server.WebSocketPort);
        await peer.SendRawAsync(RawWebSocket.Frame(Text, [.. "SEND\n"u8, 0xE2, 0x82]));
        var close = await peer.ReceiveAsync();
        Assert.Equal(1007, close.CloseCode);
    }

    [Fact]
    public async Task A_utf8_character_cut_between_fragments_is_accepted()
    {
        using var peer = await RawWebSocket.OpenAsync(Server.WebSocketPort);
        // "x-note:€" with the three bytes of € over three fragments, and a ping between two of them.
        byte[] connect = [.. "CONNECT\naccept-version:1.2\nhost:/\nx-note:"u8, 0xE2, 0x82, 0xAC, .. "\n\n\0"u8];
        var cut = connect.AsSpan().IndexOf((byte)0xE2) + 1;
        await peer.SendRawAsync([
            .. RawWebSocket.Frame(Text, connect[..cut], fin: false),
            .. RawWebSocket.Frame(Continuation, connect[cut..(cut + 1)], fin: false),
            .. RawWebSocket.Frame(Ping, "mid"u8.ToArray()),
            .. RawWebSocket.Frame(Continuation, connect[(cut + 1)..]),
        ]);
        var pong = await peer.ReceiveAsync();
        Assert.Equal(Pong, pong.Opcode);
        Assert.Equal("mid"u8.ToArray(), pong.Payload);
        var connected = await peer.ReceiveAsync();
        Assert.Equal(Text, connected.Opcode);
        Assert.StartsWith("CONNECTED\n", Encoding.UTF8.GetString(connected.Payload), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_ping_is_answered_with_its_payload_and_a_pong_needs_no_answer()
    {
        using var peer = await RawWebSocket.OpenAsync(Server.WebSocketPort);
        var payload = Enumerable.Range(0, 125).Select(i => (byte)i).ToArray();
        await peer.SendRawAsync([.. RawWebSocket.Frame(Pong, [9]), .. RawWebSocket.Frame(Ping, payload), .. RawWebSocket.Frame(Text, ConnectFrame)]);
        var pong = await peer.ReceiveAsync();
        Assert.Equal(Pong, pong.Opcode);
        Assert.Equal(payload, pong.Payload);
        Assert.StartsWith("CONNECTED\n", Encoding.UTF8.GetString((await peer.ReceiveAsync()).Payload), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_close_from_the_client_is_echoed_and_the_socket_closed()
    {
        using var peer = await RawWebSocket.OpenAsync(Server.WebSocketPort);
        await peer.SendRawAsync(RawWebSocket.Frame(Text, ConnectFrame));
        Assert.StartsWith("CONNECTED\n", Encoding.UTF8.GetString((await peer.ReceiveAsync()).Payload), StringComparison.Ordinal);
        byte[] close = [0x0F, 0xA0, .. "done"u8]; // 4000, an application's own code
        await peer.SendRawAsync(RawWebSocket.Frame(Close, close));
        var echo = await peer.ReceiveAsync();
        Assert.Equal(Close, echo.Opcode);
        Assert.Equal(4000, echo.CloseCode);
        Assert.True(await peer.IsClosedByServerAsync());
    }

    [Fact]
    public async Task A_binary_frame_split_into_one_byte_fragments_is_reassembled()
    {
        using var peer = await RawWebSocket.OpenAsync(Server.WebSocketPort);
        var frames = new List<byte>();
        for (var i = 0; i < ConnectFrame.Length; i++)
        {
            frames.AddRange(RawWebSocket.Frame(i == 0 ? Binary : Continuation, ConnectFrame[i..(i + 1)], fin: i == ConnectFrame.Length - 1));
        }

        // And the whole thing one byte per write: headers and masks cut anywhere.
        foreach (var b in frames)
        {
            await peer.SendRawAsync([b]);
        }

        Assert.StartsWith("CONNECTED\n", Encoding.UTF8.GetString((await peer.ReceiveAsync()).Payload), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_compressed_message_in_fragments_is_inflated_and_large_replies_are_compressed()
    {
        using var peer = await RawWebSocket.OpenAsync(Server.WebSocketPort, extensions: "permessage-deflate; client_max_window_bits");
        Assert.Contains("client_no_context_takeover", peer.ResponseHead, StringComparison.Ordinal);
        var compressed = RawWebSocket.Deflate(ConnectFrame);
        await peer.SendRawAsync([
            .. RawWebSocket.Frame(Text, compressed[..3], fin: false, rsv: 0x40),
            .. RawWebSocket.Frame(Continuation, compressed[3..]),
        ]);
        var connected = await peer.ReceiveAsync();
        Assert.StartsWith("CONNECTED\n", Encoding.UTF8.GetString(connected.Payload), StringComparison.Ordinal);

        // A receipt-bearing SEND to a queue we subscribe to: the 8 KB MESSAGE comes back compressed (RSV1), on its own.
        var queue = Unique.Queue();
        var body = string.Concat(Enumerable.Repeat("abcdefgh", 1024));
        await peer.SendRawAsync(RawWebSocket.Frame(Text, Encoding.UTF8.GetBytes($"SUBSCRIBE\ndestination:{queue}\nid:s\nreceipt:r1\n\n\0"), rsv: 0));
        Assert.StartsWith("RECEIPT\n", Encoding.UTF8.GetString((await peer.ReceiveAsync()).Payload), StringComparison.Ordinal);
        await peer.SendRawAsync(RawWebSocket.Frame(Text, RawWebSocket.Deflate(Encoding.UTF8.GetBytes($"SEND\ndestination:{queue}\n\n{body}\0")), rsv: 0x40));
        var message = await peer.ReceiveAsync();
        Assert.True(message.Compressed, "a frame over the threshold is compressed");
        var text = Encoding.UTF8.GetString(RawWebSocket.Inflate(message.Payload));
        Assert.StartsWith("MESSAGE\n", text, StringComparison.Ordinal);
        Assert.EndsWith(body + "\0", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_deflate_data_gets_close_1007()
    {
        using var peer = await RawWebSocket.OpenAsync(Server.WebSocketPort, extensions: "permessage-deflate");
        await peer.SendRawAsync(RawWebSocket.Frame(Text, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF], rsv: 0x40));
        var close = await peer.ReceiveAsync();
        Assert.Equal(Close, close.Opcode);
        Assert.Equal(1007, close.CloseCode);
    }

    private async Task AssertBrokerStillServesAsync()
    {
        using var other = await RawWebSocket.OpenAsync(Server.WebSocketPort);
        await other.SendRawAsync(RawWebSocket.Frame(Text, ConnectFrame));
        Assert.StartsWith("CONNECTED\n", Encoding.UTF8.GetString((await other.ReceiveAsync()).Payload), StringComparison.Ordinal);
    }
}

/// <summary>A WebSocket client that writes frames byte for byte as told, masked or not, and reads the server's.</summary>
internal sealed class RawWebSocket : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;

    private RawWebSocket(TcpClient tcp, string head)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
        ResponseHead = head;
    }

    public string ResponseHead { get; }

    public sealed record ServerFrame(byte Opcode, bool Compressed, byte[] Payload)
    {
        public int CloseCode => Payload.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(Payload) : 1005;

        public string CloseReason => Payload.Length > 2 ? Encoding.UTF8.GetString(Payload, 2, Payload.Length - 2) : "";
    }

    public static async Task<RawWebSocket> OpenAsync(int port, string? extensions = null)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync("127.0.0.1", port);
        var stream = tcp.GetStream();
        var request = $"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v12.stomp\r\n" +
            (extensions is null ? "" : $"Sec-WebSocket-Extensions: {extensions}\r\n") + "\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        var head = new StringBuilder();
        var one = new byte[1];
        using var timeout = new CancellationTokenSource(Timeout);
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            Assert.Equal(1, await stream.ReadAsync(one, timeout.Token));
            head.Append((char)one[0]);
        }

        Assert.StartsWith("HTTP/1.1 101", head.ToString(), StringComparison.Ordinal);
        return new RawWebSocket(tcp, head.ToString());
    }

    /// <summary>One client frame: masked with a fixed non-zero mask unless told otherwise.</summary>
    public static byte[] Frame(byte opcode, byte[] payload, bool fin = true, bool masked = true, byte rsv = 0)
    {
        var frame = new List<byte> { (byte)((fin ? 0x80 : 0) | rsv | opcode) };
        var maskBit = masked ? 0x80 : 0;
        if (payload.Length < 126)
        {
            frame.Add((byte)(maskBit | payload.Length));
        }
        else if (payload.Length <= ushort.MaxValue)
        {
            frame.Add((byte)(maskBit | 126));
            frame.Add((byte)(payload.Length >> 8));
            frame.Add((byte)payload.Length);
        }
        else
        {
            frame.Add((byte)(maskBit | 127));
            var length = new byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(length, (ulong)payload.Length);
            frame.AddRange(length);
        }

        byte[] mask = [0x37, 0xFA, 0x21, 0x3D];
        if (masked)
        {
            frame.AddRange(mask);
        }

        frame.AddRange(masked ? payload.Select((b, i) => (byte)(b ^ mask[i & 3])) : payload);
        return [.. frame];
    }

    /// <summary>A permessage-deflate payload: raw deflate, sync-flushed, the 00 00 FF FF tail taken off.</summary>
    public static byte[] Deflate(byte[] data)
    {
        using var output = new MemoryStream();
        using (var deflate = new DeflateStream(output, CompressionLevel.Optimal, leaveOpen: true))
        {
            deflate.Write(data);
            deflate.Flush(); // a sync flush: ends in 00 00 FF FF
        }

        var bytes = output.ToArray();
        var end = bytes.AsSpan().LastIndexOf((ReadOnlySpan<byte>)[0x00, 0x00, 0xFF, 0xFF]);
        return bytes[..end];
    }

    public static byte[] Inflate(byte[] payload)
    {
        using var input = new MemoryStream([.. payload, 0x00, 0x00, 0xFF, 0xFF]);
        using var inflate = new DeflateStream(input, CompressionMode.Decompress);
        using var output = new MemoryStream();
        var buffer = new byte[4096];
        int read;
        try
        {
            while ((read = inflate.Read(buffer)) > 0)
            {
                output.Write(buffer, 0, read);
            }
        }
        catch (InvalidDataException)
        {
            // The stream has no final block: everything before the tail has been read.
        }

        return output.ToArray();
    }

    public async Task SendRawAsync(byte[] bytes)
    {
        await _stream.WriteAsync(bytes);
        await _stream.FlushAsync();
    }

    public async Task<ServerFrame> ReceiveAsync()
    {
        using var timeout = new CancellationTokenSource(Timeout);
        var head = await ReadExactlyAsync(2, timeout.Token);
        Assert.True((head[1] & 0x80) == 0, "server frames are never masked");
        long length = head[1] & 0x7F;
        if (length == 126)
        {
            length = BinaryPrimitives.ReadUInt16BigEndian(await ReadExactlyAsync(2, timeout.Token));
        }
        else if (length == 127)
        {
            length = (long)BinaryPrimitives.ReadUInt64BigEndian(await ReadExactlyAsync(8, timeout.Token));
        }

        Assert.True((head[0] & 0x80) != 0, "server messages are not fragmented");
        return new ServerFrame((byte)(head[0] & 0x0F), (head[0] & 0x40) != 0, await ReadExactlyAsync((int)length, timeout.Token));
    }

    /// <summary>Whether the server closes the socket (a read returns 0) within the timeout.</summary>
    public async Task<bool> IsClosedByServerAsync()
    {
        using var timeout = new CancellationTokenSource(Timeout);
        var buffer = new byte[1024];
        try
        {
            while (true)
            {
                if (await _stream.ReadAsync(buffer, timeout.Token) == 0)
                {
                    return true;
                }
            }
        }
        catch (IOException)
        {
            return true; // reset
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public void Dispose() => _tcp.Dispose();

    private async Task<byte[]> ReadExactlyAsync(int count, CancellationToken cancellationToken)
    {
        var bytes = new byte[count];
        await _stream.ReadExactlyAsync(bytes, cancellationToken);
        return bytes;
    }
}
