using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;
using System.Text;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Hardening;

/// <summary>
/// The per-connection token bucket (frames/s and bytes/s, a burst of one second's worth): a breach either ends the
/// connection with ERROR "rate limit exceeded" or, with OnBreach=Throttle, only slows the reading of that connection.
/// </summary>
public sealed class RateLimitTests
{
    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Sending_frames_faster_than_the_rate_ends_the_connection(Transport transport)
    {
        await using var server = await BrokerServer.StartAsync("Broker:Limits:RateLimit:FramesPerSecond=10", "Broker:Limits:RateLimit:OnBreach=Disconnect");
        using var metrics = new MetricsRecorder(server);
        var queue = Unique.Queue();
        await using var consumer = await server.ConnectClientAsync();
        await consumer.SubscribeAsync(queue, "c");
        await using var client = await server.ConnectClientAsync(transport);

        // 30 frames in one write: the first ~9 fit the burst left after CONNECT, then the bucket is empty.
        const int count = 30;
        var burst = new List<byte>();
        for (var i = 0; i < count; i++)
        {
            burst.AddRange(Frames.Send(queue, Encoding.UTF8.GetBytes($"m{i}")));
        }

        await FrameLimitTests.SendTolerantAsync(client, [.. burst]);
        var frames = await client.ExpectClosedAsync();
        var error = Assert.Single(frames);
        Assert.Equal(StompCommand.Error, error.Command);
        Assert.Equal("rate limit exceeded", error["message"]);
        if (transport == Transport.WebSocket)
        {
            Assert.Equal(WebSocketCloseStatus.PolicyViolation, client.CloseStatus);
        }

        Assert.Equal(1, metrics.Breaches("rate"));

        // What was within the rate was delivered, in order; the rest was not processed.
        var delivered = new List<string>();
        while (await consumer.TryReceiveAsync(TimeSpan.FromMilliseconds(300)) is { } message)
        {
            delivered.Add(message.BodyText);
        }

        Assert.InRange(delivered.Count, 1, count - 1);
        Assert.Equal(Enumerable.Range(0, delivered.Count).Select(i => $"m{i}"), delivered);

        // A client within the rate (AssertAliveAsync: three frames) is unaffected.
        await consumer.AssertAliveAsync();
        await server.AssertStillServesOthersAsync();
    }

    [Fact]
    public async Task Sending_bytes_faster_than_the_rate_ends_the_connection()
    {
        await using var server = await BrokerServer.StartAsync("Broker:Limits:RateLimit:BytesPerSecond=8192");
        using var metrics = new MetricsRecorder(server);
        await using var client = await server.ConnectClientAsync();
        await client.SendAsync(Unique.Queue(), "small", receipt: true);

        await FrameLimitTests.SendTolerantAsync(client, Frames.Send(Unique.Queue(), new byte[16 * 1024]));
        var error = await client.ExpectErrorThenCloseAsync();
        Assert.Equal("rate limit exceeded", error["message"]);
        Assert.Contains("8192 bytes/s", error.BodyText, StringComparison.Ordinal);
        Assert.Equal(1, metrics.Breaches("rate"));
        await server.AssertStillServesOthersAsync();
    }

    [Theory]
    [InlineData("FramesPerSecond=20", 60, 10)]
    [InlineData("BytesPerSecond=20000", 6, 8000)]
    public async Task With_throttle_every_frame_arrives_but_no_faster_than_the_rate(string rate, int count, int bodyBytes)
    {
        await using var server = await BrokerServer.StartAsync($"Broker:Limits:RateLimit:{rate}", "Broker:Limits:RateLimit:OnBreach=Throttle");
        using var metrics = new MetricsRecorder(server);
        var queue = Unique.Queue();
        await using var consumer = await server.ConnectClientAsync();
        await consumer.SubscribeAsync(queue, "c");
        await using var producer = await server.ConnectClientAsync(Transport.WebSocket);

        var body = new byte[bodyBytes];
        var burst = new List<byte>();
        for (var i = 0; i < count; i++)
        {
            burst.AddRange(Frames.Send(queue, body, ("seq", i.ToString(CultureInfo.InvariantCulture))));
        }

        burst.AddRange(Frames.Send(queue, body, ("seq", "last"), ("receipt", "done")));
        var clock = Stopwatch.StartNew();
        await producer.SendRawAsync(burst.ToArray());
        await producer.ExpectReceiptAsync("done");
        var elapsed = clock.Elapsed;

        // Everything, in order, no ERROR.
        var received = await consumer.ReceiveMessagesAsync(count + 1);
        Assert.Equal([.. Enumerable.Range(0, count).Select(i => i.ToString(CultureInfo.InvariantCulture)), "last"], received.Select(m => m["seq"]));
        Assert.True(metrics.Breaches("rate") > 0, "the burst never went over the rate");

        // What was over the one-second burst was let in at the rate. The theoretical time, counting the CONNECT and
        // the broker's own per-frame estimate (body + 64 + 16 per header); only half of it is asserted, loosely.
        var frames = count + 2;
        var bytes = (64 + (3 * 16)) + ((count + 1) * (bodyBytes + 64 + (3 * 16)));
        var theoretical = rate.StartsWith("Frames", StringComparison.Ordinal) ? (frames - 20) / 20.0 : (bytes - 20000) / 20000.0;
        Assert.True(elapsed.TotalSeconds >= theoretical * 0.5, $"{frames} frames took {elapsed.TotalSeconds:0.00} s; at the rate, about {theoretical:0.00} s");

        await producer.AssertAliveAsync();
    }

    [Fact]
    public async Task A_throttled_client_that_keeps_sending_heart_beats_is_not_taken_for_silent()
    {
        // The client promises a heart-beat every 300 ms, so 600 ms of silence would end it; its burst takes ~3 s to
        // be let in at 10 frames/s. The heart-beats it sends meanwhile wait behind the burst, unread, yet it is alive.
        await using var server = await BrokerServer.StartAsync(
            "Broker:Limits:RateLimit:FramesPerSecond=10", "Broker:Limits:RateLimit:OnBreach=Throttle",
            "Broker:Tcp:HeartBeat:ReceiveMs=300", "Broker:Tcp:HeartBeat:MinMs=100");
        var queue = Unique.Queue();
        await using var consumer = await server.ConnectClientAsync();
        await consumer.SubscribeAsync(queue, "c");
        await using var producer = await server.ConnectClientAsync(Transport.Tcp, heartBeat: "300,0");

        using var stop = new CancellationTokenSource();
        var beats = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    await Task.Delay(100, stop.Token);
                    await producer.SendRawAsync("\n", stop.Token);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or System.Net.Sockets.SocketException)
            {
            }
        });

        const int count = 40;
        var burst = new List<byte>();
        for (var i = 0; i < count; i++)
        {
            burst.AddRange(Frames.Send(queue, Encoding.UTF8.GetBytes($"m{i}"), i == count - 1 ? [("receipt", "done")] : []));
        }

        await producer.SendRawAsync(burst.ToArray());
        var answer = await producer.ReceiveAsync(TimeSpan.FromSeconds(15));
        await stop.CancelAsync();
        await beats;
        Assert.True(answer.Command == StompCommand.Receipt, $"expected the RECEIPT, got {answer}");
        Assert.Equal(Enumerable.Range(0, count).Select(i => $"m{i}"), (await consumer.ReceiveMessagesAsync(count)).Select(m => m.BodyText));
    }
}
