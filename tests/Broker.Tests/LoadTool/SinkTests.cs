using Broker.Load.Sink;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.LoadTool;

/// <summary>
/// stompload's sink server (CONNECT and receipts answered, SENDs discarded), run in this process: the ceiling row of
/// the comparison with --sink, and a broker that loses everything without it, which the tool must notice. With
/// --relay it hands each SEND to its destination's subscribers at once: the latency floor.
/// </summary>
[Collection(LoadToolRunAloneGroup.Name)]
public sealed class SinkTests
{
    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task P2p_with_sink_is_ok_with_messages_sent_and_none_received(Transport transport)
    {
        await using var sink = SinkHost.Start();

        var run = await StompLoad.RunAsync("--scenario", "p2p", "--url", sink.Url(transport), "--sink", "--broker", "sink");

        var r = run.Result;
        Assert.True(r.Ok, $"the run should be ok: {run}");
        Assert.Equal(0, run.ExitCode);
        Assert.Null(r.Error);
        Assert.True(r.Sink);
        Assert.True(r.Sent > 0, $"nothing was sent: {run}");
        Assert.True(r.SentPerSecond > 0, $"no send rate: {run}");
        Assert.Equal(0, r.Received);
        Assert.Equal(0, r.Expected);
        Assert.Equal(0, r.Lost);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task P2p_against_the_sink_without_the_sink_flag_reports_every_message_lost(Transport transport)
    {
        await using var sink = SinkHost.Start();

        var run = await StompLoad.RunAsync("--scenario", "p2p", "--url", sink.Url(transport), "--drain-timeout", "1");

        var r = run.Result;
        Assert.False(r.Ok, $"the run should have failed: {run}");
        Assert.Equal(1, run.ExitCode);
        Assert.False(r.Sink);
        Assert.True(r.Sent > 0, $"nothing was sent: {run}");
        Assert.Equal(r.Sent, r.Expected);
        Assert.Equal(0, r.Received);
        Assert.Equal(r.Sent, r.Lost);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Latency_against_the_relaying_sink_is_ok_and_measured(Transport transport)
    {
        await using var sink = SinkHost.Start(relay: true);

        var run = await StompLoad.RunAsync("--scenario", "latency", "--rate", "1000", "--url", sink.Url(transport), "--broker", "sink");

        var r = run.Result;
        Assert.True(r.Ok, $"the run should be ok: {run}");
        Assert.True(r.Received > 0 && r.Received == r.Sent, $"every message relayed once: {run}");
        Assert.NotNull(r.Latency);
        Assert.True(r.Latency!.P99 > 0, $"no latency measured: {run}");
    }

    [Fact]
    public async Task The_relaying_sink_hands_a_send_to_each_subscriber_of_its_destination_with_its_headers_and_body()
    {
        await using var sink = SinkHost.Start(relay: true);
        await using var first = await sink.ConnectAsync(Transport.Tcp);
        await using var second = await sink.ConnectAsync(Transport.WebSocket);
        await using var producer = await sink.ConnectAsync(Transport.Tcp);
        await first.SubscribeAsync("/queue/relayed", "one");
        await second.SubscribeAsync("/queue/relayed", "two");

        await producer.SendFrameAsync(StompCommand.Send, [("destination", "/queue/nobody"), ("receipt", "discarded")], "dropped"u8.ToArray());
        Assert.Equal("discarded", (await producer.ReceiveAsync())["receipt-id"]);
        await producer.SendFrameAsync(StompCommand.Send, [("destination", "/queue/relayed"), ("loadt", "12345"), ("receipt", "relayed")], "hello"u8.ToArray());
        Assert.Equal("relayed", (await producer.ReceiveAsync())["receipt-id"]);

        foreach (var (subscriber, id) in new[] { (first, "one"), (second, "two") })
        {
            var message = await subscriber.ReceiveMessageAsync();
            Assert.Equal("hello", message.BodyText);
            Assert.Equal(id, message["subscription"]);
            Assert.Equal("/queue/relayed", message["destination"]);
            Assert.Equal("12345", message["loadt"]);
            Assert.Null(message["receipt"]);
            Assert.NotNull(message["message-id"]);
            await subscriber.ExpectNothingAsync(200); // the SEND to /queue/nobody reached nobody
        }
    }

    [Fact]
    public async Task Without_relay_the_sink_delivers_nothing_to_a_subscriber()
    {
        await using var sink = SinkHost.Start(relay: false);
        await using var subscriber = await sink.ConnectAsync(Transport.Tcp);
        await using var producer = await sink.ConnectAsync(Transport.Tcp);
        await subscriber.SubscribeAsync("/queue/kept", "one");

        await producer.SendFrameAsync(StompCommand.Send, [("destination", "/queue/kept"), ("receipt", "taken")], "hello"u8.ToArray());
        Assert.Equal("taken", (await producer.ReceiveAsync())["receipt-id"]);
        await subscriber.ExpectNothingAsync(300);
    }

    /// <summary>The sink on free ports until disposed; disposing stops it, which must not take long.</summary>
    private sealed class SinkHost : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly int _tcpPort = BrokerServer.FreePort();
        private readonly int _webSocketPort = BrokerServer.FreePort();
        private Task _running = Task.CompletedTask;
        private bool _relay;

        public static SinkHost Start(bool relay = false)
        {
            var host = new SinkHost { _relay = relay };
            // The listeners are bound before RunAsync first yields.
            host._running = SinkServer.RunAsync(host._tcpPort, host._webSocketPort, host._relay, host._stop.Token);
            Assert.False(host._running.IsCompleted, $"the sink stopped at once: {host._running.Exception}");
            return host;
        }

        public async Task<StompTestClient> ConnectAsync(Transport transport)
        {
            var client = transport == Transport.Tcp
                ? await StompTestClient.ConnectTcpAsync(_tcpPort)
                : await StompTestClient.ConnectWebSocketAsync(new Uri(Url(transport)));
            await client.ConnectAsync("1.2", "0,0");
            return client;
        }

        public string Url(Transport transport) => transport == Transport.Tcp
            ? $"tcp://127.0.0.1:{_tcpPort}"
            : $"ws://127.0.0.1:{_webSocketPort}/ws";

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _running.WaitAsync(TimeSpan.FromSeconds(10));
            _stop.Dispose();
        }
    }
}
