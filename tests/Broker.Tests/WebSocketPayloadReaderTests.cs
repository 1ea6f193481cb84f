using System.Buffers;
using System.IO.Pipelines;
using Broker.Transports;
using Broker.Transports.WebSockets;
using Microsoft.Extensions.Logging.Abstractions;

namespace Broker.Tests;

/// <summary>
/// The WebSocket transport's input as the session reads it, over a connection made of two in-memory pipes: frames are
/// decoded from the connection when the session reads, bytes not yet consumed survive later reads (also when the
/// buffer moves or grows), the buffer goes back to the pool once everything is consumed, pings are answered on the
/// way, and the close handshake ends reading on either side.
/// </summary>
public sealed class WebSocketPayloadReaderTests : IAsyncDisposable
{
    private const byte Continuation = 0x0, Text = 0x1, Binary = 0x2, Close = 0x8, Ping = 0x9;

    private readonly Pipe _toBroker = new();
    private readonly Pipe _fromBroker = new();
    private readonly WebSocketTransport _transport;
    private int _aborts;

    public WebSocketPayloadReaderTests()
    {
        _transport = new WebSocketTransport(
            new DuplexPipe(_toBroker.Reader, _fromBroker.Writer), this, static owner => Interlocked.Increment(ref ((WebSocketPayloadReaderTests)owner)._aborts),
            remote: null, deflateWindowBits: null, compressionThreshold: 1024, NullLogger.Instance);
    }

    private PipeReader Input => _transport.Input;

    private PayloadReader Payload => (PayloadReader)_transport.Input;

    [Fact]
    public async Task A_message_is_read_whole_and_the_buffer_goes_back_once_it_is_consumed()
    {
        await SendAsync(RawWebSocket.Frame(Text, "SEND\n\n\0"u8.ToArray()));

        var read = await Input.ReadAsync();
        Assert.Equal("SEND\n\n\0"u8.ToArray(), read.Buffer.ToArray());
        Assert.False(read.IsCompleted);
        Assert.True(Payload.HoldsBuffer);

        Input.AdvanceTo(read.Buffer.End);
        Assert.False(Payload.HoldsBuffer);
    }

    [Fact]
    public async Task Bytes_not_yet_consumed_survive_the_buffer_moving_and_growing()
    {
        var first = Pattern(3000, seed: 1);
        var second = Pattern(6000, seed: 2);
        await SendAsync(RawWebSocket.Frame(Binary, first, fin: false));
        var read = await Input.ReadAsync();
        Assert.Equal(first, read.Buffer.ToArray());
        Input.AdvanceTo(read.Buffer.GetPosition(1000), read.Buffer.End); // a frame not yet whole: keep the rest

        // 2,000 kept + 6,000 new do not fit the first 4 KiB array: the kept bytes move into a bigger one.
        await SendAsync(RawWebSocket.Frame(Continuation, second));
        read = await Input.ReadAsync();
        Assert.Equal([.. first[1000..], .. second], read.Buffer.ToArray());

        // One byte left near the end of the 8 KiB array, where the next 500 do not fit: it moves to the front.
        Input.AdvanceTo(read.Buffer.GetPosition(read.Buffer.Length - 1), read.Buffer.End);
        var third = Pattern(500, seed: 3);
        await SendAsync(RawWebSocket.Frame(Binary, third));
        read = await Input.ReadAsync();
        Assert.Equal([second[^1], .. third], read.Buffer.ToArray());
        Input.AdvanceTo(read.Buffer.End);
        Assert.False(Payload.HoldsBuffer);
    }

    [Fact]
    public async Task A_read_after_everything_was_examined_waits_for_more()
    {
        await SendAsync(RawWebSocket.Frame(Text, "abc"u8.ToArray()));
        var read = await Input.ReadAsync();
        Input.AdvanceTo(read.Buffer.Start, read.Buffer.End);

        var pending = Input.ReadAsync();
        await Task.Delay(50);
        Assert.False(pending.IsCompleted, "a read with nothing new must wait");

        await SendAsync(RawWebSocket.Frame(Text, "def"u8.ToArray()));
        read = await pending;
        Assert.Equal("abcdef"u8.ToArray(), read.Buffer.ToArray());
        Input.AdvanceTo(read.Buffer.End);
    }

    [Fact]
    public async Task CancelPendingRead_ends_a_waiting_read_as_cancelled_and_the_next_read_goes_on()
    {
        var pending = Input.ReadAsync();
        Input.CancelPendingRead();
        var read = await pending;
        Assert.True(read.IsCanceled);
        Assert.False(read.IsCompleted);
        Input.AdvanceTo(read.Buffer.End);

        await SendAsync(RawWebSocket.Frame(Text, "x"u8.ToArray()));
        read = await Input.ReadAsync();
        Assert.False(read.IsCanceled);
        Assert.Equal("x"u8.ToArray(), read.Buffer.ToArray());
        Input.AdvanceTo(read.Buffer.End);
    }

    [Fact]
    public async Task A_ping_is_answered_on_the_way_and_the_peers_close_completes_the_input_and_is_echoed()
    {
        await SendAsync([.. RawWebSocket.Frame(Ping, [1, 2, 3]), .. RawWebSocket.Frame(Text, "x"u8.ToArray()), .. RawWebSocket.Frame(Close, [0x03, 0xE8])]);

        var read = await Input.ReadAsync();
        Assert.Equal("x"u8.ToArray(), read.Buffer.ToArray());
        Input.AdvanceTo(read.Buffer.End);
        read = await Input.ReadAsync();
        Assert.True(read.IsCompleted);
        Assert.True(read.Buffer.IsEmpty);
        Input.AdvanceTo(read.Buffer.End);

        await _transport.CloseAsync(CloseReason.PeerClosed, CancellationToken.None);
        Assert.Equal<byte[]>([0x8A, 3, 1, 2, 3, 0x88, 2, 0x03, 0xE8], await ReceivedAsync(9));
        Assert.Equal(0, _aborts);
    }

    [Fact]
    public async Task Closing_first_waits_for_the_peers_close_and_drops_what_the_peer_sends_before_it()
    {
        var closing = _transport.CloseAsync(CloseReason.Disconnect, CancellationToken.None).AsTask();
        var close = await ReceivedAsync(2 + 2 + "bye".Length);
        Assert.Equal<byte[]>([0x88, 5, 0x03, 0xE8, .. "bye"u8], close);
        Assert.False(closing.IsCompleted, "the close handshake waits for the peer's close");

        await SendAsync([.. RawWebSocket.Frame(Binary, Pattern(10_000, seed: 4)), .. RawWebSocket.Frame(Close, [0x03, 0xE8])]);
        await closing.WaitAsync(TimeSpan.FromSeconds(4));
        Assert.Equal(0, _aborts);
        Assert.False(Payload.HoldsBuffer, "what came before the close was dropped, not buffered");
    }

    [Fact]
    public async Task A_peer_that_never_answers_the_close_is_cut_off()
    {
        await _transport.CloseAsync(CloseReason.Disconnect, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(1, _aborts);
    }

    public async ValueTask DisposeAsync()
    {
        await _toBroker.Writer.CompleteAsync();
        await _fromBroker.Reader.CompleteAsync();
    }

    private static byte[] Pattern(int length, int seed) => [.. Enumerable.Range(0, length).Select(i => (byte)((i * 31) + seed))];

    private async Task SendAsync(byte[] bytes)
    {
        await _toBroker.Writer.WriteAsync(bytes);
    }

    private async Task<byte[]> ReceivedAsync(int count)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        while (true)
        {
            var read = await _fromBroker.Reader.ReadAsync(timeout.Token);
            if (read.Buffer.Length >= count)
            {
                var bytes = read.Buffer.Slice(0, count).ToArray();
                _fromBroker.Reader.AdvanceTo(read.Buffer.GetPosition(count));
                return bytes;
            }

            _fromBroker.Reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }

    private sealed record DuplexPipe(PipeReader Input, PipeWriter Output) : IDuplexPipe;
}
