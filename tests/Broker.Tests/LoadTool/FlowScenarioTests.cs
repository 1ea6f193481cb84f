using System.Globalization;
using System.Text.Json;
using Broker.Load.Reporting;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.LoadTool;

/// <summary>
/// stompload's p2p, fan-out and latency scenarios against the real broker, in this process, over TCP and WebSocket:
/// short runs that must deliver everything exactly once and in order, and say so in the result file.
/// </summary>
[Collection(LoadToolRunAloneGroup.Name)]
public sealed class FlowScenarioTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private string Url(Transport transport) => transport == Transport.Tcp
        ? $"tcp://127.0.0.1:{broker.Server.TcpPort}"
        : broker.Server.WebSocketUri.ToString();

    [Theory]
    [InlineData(Transport.Tcp, 1)]
    [InlineData(Transport.Tcp, 2)]
    [InlineData(Transport.WebSocket, 1)]
    [InlineData(Transport.WebSocket, 2)]
    public async Task P2p_against_the_broker_delivers_everything_once_in_order_and_the_json_round_trips(Transport transport, int clients)
    {
        var n = clients.ToString(CultureInfo.InvariantCulture);
        var run = await StompLoad.RunAsync("--scenario", "p2p", "--url", Url(transport), "--producers", n, "--consumers", n, "--broker", "stompbroker-memory");

        StompLoad.AssertDeliveredExactlyOnce(run);
        var r = run.Result;
        Assert.Equal("p2p", r.Scenario);
        Assert.Equal(transport == Transport.Tcp ? "tcp" : "ws", r.Transport);
        Assert.Equal($"p2p {clients}→{clients}, 100 B", r.Case);
        Assert.Equal("stompbroker-memory", r.Broker);
        Assert.Equal(clients, r.Parameters.Producers);
        Assert.Equal(clients, r.Parameters.Consumers);
        Assert.StartsWith("/queue/stompload.", r.Parameters.Destination, StringComparison.Ordinal);
        Assert.Null(r.Latency);
        Assert.True(r.DurationSeconds > 0);

        // What the report reads back is what was written: nothing lost or renamed on the way through JSON.
        Assert.Equal(run.Json.TrimEnd('\n'), JsonSerializer.Serialize(r, LoadResult.JsonOptions));
        using var document = JsonDocument.Parse(run.Json);
        Assert.Equal(r.Sent, document.RootElement.GetProperty("sent").GetInt64());
        Assert.True(document.RootElement.GetProperty("ok").GetBoolean());
    }

    [Fact]
    public async Task Fanout_to_three_subscribers_delivers_every_message_to_each()
    {
        var run = await StompLoad.RunAsync("--scenario", "fanout", "--url", Url(Transport.Tcp), "--subscribers", "3");

        StompLoad.AssertDeliveredExactlyOnce(run, deliveriesPerMessage: 3);
        Assert.Equal(run.Result.Sent * 3, run.Result.Received);
        Assert.Equal("fan-out 1→3, 100 B", run.Result.Case);
        Assert.StartsWith("/topic/stompload.", run.Result.Parameters.Destination, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Latency_at_a_low_rate_records_ordered_percentiles(Transport transport)
    {
        var run = await StompLoad.RunAsync("--scenario", "latency", "--url", Url(transport), "--rate", "200");

        StompLoad.AssertDeliveredExactlyOnce(run);
        var latency = run.Result.Latency;
        Assert.NotNull(latency);
        Assert.True(latency.Samples > 0, $"no latency samples: {run}");
        Assert.True(latency.P50 > 0, $"a zero median latency: {run}");
        Assert.True(latency.P50 <= latency.P90 && latency.P90 <= latency.P99 && latency.P99 <= latency.P999 && latency.P999 <= latency.Max, $"percentiles out of order: {run}");
        Assert.InRange(latency.Mean, 0, latency.Max);
        // A sample per message stamped inside the measured window: never more than were received.
        Assert.True(latency.Samples <= run.Result.Received, $"{latency.Samples} samples of {run.Result.Received} messages: {run}");
        Assert.Equal(200, run.Result.Parameters.Rate);
    }

    [Fact]
    public async Task Latency_producer_writes_the_messages_due_each_millisecond_not_a_timer_tick_at_a_time()
    {
        // .NET's timers move on the kernel's tick (4 ms at HZ=250): paced by Task.Delay(1), 5,000 msg/s went out 20–40
        // at a time, and the latency measured was that of bursts. About 5 per write means a wake-up every millisecond;
        // the bound leaves room for a loaded machine waking the producer late.
        var run = await StompLoad.RunAsync("--scenario", "latency", "--url", Url(Transport.Tcp), "--rate", "5000");

        StompLoad.AssertDeliveredExactlyOnce(run);
        var latency = run.Result.Latency;
        Assert.NotNull(latency);
        Assert.InRange(latency.MessagesPerWrite, 1, 12);
    }
}
