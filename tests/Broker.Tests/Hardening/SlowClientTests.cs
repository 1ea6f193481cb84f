using System.Net.WebSockets;
using System.Text;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Hardening;

/// <summary>
/// Slow-loris clients: a CONNECT or a header line trickled a little at a time. Each is cut off by a limit (the CONNECT
/// timeout, the header line limit) long before the frame limit, while everybody else is served.
/// </summary>
public sealed class SlowClientTests
{
    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_CONNECT_sent_one_byte_a_second_is_cut_off_by_the_connect_timeout(Transport transport)
    {
        await using var server = await BrokerServer.StartAsync("Broker:Limits:ConnectTimeout=00:00:02");
        using var metrics = new MetricsRecorder(server);
        await using var client = await server.OpenAsync(transport);
        var connect = Encoding.UTF8.GetBytes("CONNECT\naccept-version:1.2\nhost:/\n\n\0");
        using var trickle = Trickle(client, connect, chunk: 1, TimeSpan.FromSeconds(1), out var sent);

        var error = await client.ExpectErrorThenCloseAsync();
        Assert.Equal("no CONNECT frame in time", error["message"]);
        Assert.InRange(Volatile.Read(ref sent[0]), 1, connect.Length - 1);
        Assert.Equal(1, metrics.Breaches("connect-timeout"));
        await server.AssertStillServesOthersAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp, true)]
    [InlineData(Transport.Tcp, false)]
    [InlineData(Transport.WebSocket, true)]
    [InlineData(Transport.WebSocket, false)]
    public async Task A_header_line_trickling_forever_is_cut_off_at_the_line_limit(Transport transport, bool connected)
    {
        // The frame limit (4 MiB) and the CONNECT timeout (10 s) are far away: only the 256-byte line limit can stop it.
        const int lineLimit = 256;
        await using var server = await BrokerServer.StartAsync($"Broker:Limits:MaxHeaderLineBytes={lineLimit}");
        using var metrics = new MetricsRecorder(server);
        await using var client = connected ? await server.ConnectClientAsync(transport) : await server.OpenAsync(transport);
        var start = connected ? $"SEND\ndestination:{Unique.Queue()}\nx-long:" : "CONNECT\naccept-version:1.2\nhost:/\nx-long:";
        await client.SendRawAsync(start);
        using var trickle = Trickle(client, Enumerable.Repeat((byte)'x', 1024 * 1024).ToArray(), chunk: 16, TimeSpan.FromMilliseconds(20), out var sent);

        var error = await client.ExpectErrorThenCloseAsync();
        Assert.Equal($"header line too long: the limit is {lineLimit} bytes", error["message"]);
        Assert.True(Volatile.Read(ref sent[0]) < 4 * lineLimit, $"{sent[0]} bytes of the line were sent before the broker stopped it");
        Assert.Equal(1, metrics.Breaches("header-line"));
        await server.AssertStillServesOthersAsync();
    }

    // Writes data a chunk at a time with a pause between chunks until it is all sent, the connection fails or the
    // returned source is disposed. sent[0] counts the bytes written.
    private static Trickler Trickle(StompTestClient client, byte[] data, int chunk, TimeSpan pause, out long[] sent)
    {
        var stop = new Trickler();
        var counter = new long[1];
        sent = counter;
        _ = Task.Run(async () =>
        {
            try
            {
                for (var i = 0; i < data.Length && !stop.IsCancellationRequested; i += chunk)
                {
                    var piece = data.AsMemory(i, Math.Min(chunk, data.Length - i));
                    await client.SendRawAsync(piece, stop.Token);
                    Interlocked.Add(ref counter[0], piece.Length);
                    await Task.Delay(pause, stop.Token);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or System.Net.Sockets.SocketException or WebSocketException or ObjectDisposedException)
            {
            }
        });
        return stop;
    }

    private sealed class Trickler : CancellationTokenSource
    {
        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                Cancel();
            }

            base.Dispose(disposing);
        }
    }
}
