using System.Diagnostics;
using Broker.Tests.Infrastructure;

namespace Broker.Client.Tests;

/// <summary>A broker that can send and wants a heart-beat every 400 ms, and closes a client silent for 1.6 s.</summary>
public sealed class FastHeartBeatBroker : IAsyncLifetime
{
    public BrokerServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await BrokerServer.StartAsync(
        "Broker:Tcp:HeartBeat:SendMs=400",
        "Broker:Tcp:HeartBeat:ReceiveMs=400",
        "Broker:Tcp:HeartBeat:MinMs=100",
        "Broker:Tcp:HeartBeat:Tolerance=4",
        "Broker:WebSocket:HeartBeat:SendMs=400",
        "Broker:WebSocket:HeartBeat:ReceiveMs=400",
        "Broker:WebSocket:HeartBeat:MinMs=100",
        "Broker:WebSocket:HeartBeat:Tolerance=4");

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>Heart-beats both ways keep an idle connection up; a silent broker is noticed.</summary>
public sealed class HeartBeatTests(FastHeartBeatBroker broker) : IClassFixture<FastHeartBeatBroker>
{
    private static readonly TimeSpan Idle = TimeSpan.FromSeconds(4);

    private BrokerServer Server => broker.Server;

    // The client beats every 400 ms (the broker's 1.6 s limit allows three misses) and wants one every 800 ms (its own
    // limit is twice that): small enough that missed beats would drop the connection within the 4 s idle period, and
    // wide enough that a scheduling stall on a loaded 2-core machine does not.
    private static StompClientOptions Beating(StompClientOptions options) => options with
    {
        HeartBeatOutgoing = TimeSpan.FromMilliseconds(400),
        HeartBeatIncoming = TimeSpan.FromMilliseconds(800),
    };

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task An_idle_client_with_heart_beats_stays_connected(Transport transport)
    {
        await using var client = await Clients.ConnectAsync(Server, transport, Beating);
        var states = new StateRecorder(client);

        // Idle for more than twice the broker's 1.6 s limit and the client's own 1.6 s one.
        await StaysConnectedAsync(client, states, Idle);

        var queue = Unique.Queue("alive");
        await using var subscription = await client.SubscribeAsync(queue);
        await client.SendAsync(queue, "still here", Clients.Receipted);
        Assert.Equal("still here", (await subscription.NextAsync()).BodyText);
    }

    [Fact]
    public async Task A_client_notices_a_broker_that_stopped_beating_and_reconnects()
    {
        // The fake promises a beat every 100 ms (the client wants 800 ms, so 800 ms is agreed) and then sends nothing.
        await using var fake = FakeStompServer.Answering(heartBeat: "100,0");
        await using var client = await StompClient.ConnectAsync(Beating(Clients.Options(fake.Uri)));
        var states = new StateRecorder(client);
        var clock = Stopwatch.StartNew();

        await states.WaitForAsync(StompConnectionState.Connected, StompConnectionState.Reconnecting, TimeSpan.FromSeconds(5));

        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(900), $"declared dead after only {clock.Elapsed}");
        await Wait.UntilAsync(() => fake.Connects.Count >= 2, Clients.Deadline, "a reconnect to the fake");
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_consumer_that_stops_reading_is_not_mistaken_for_a_dead_broker(Transport transport)
    {
        // The application does not read: the client stops reading the socket (back-pressure), heart-beats included.
        await using var client = await Clients.ConnectAsync(Server, transport, o => Beating(o) with { SubscriptionBufferSize = 1 });
        await using var producer = await Clients.ConnectAsync(Server, Transport.Tcp);
        var states = new StateRecorder(client);
        var queue = Unique.Queue("stalled");
        await using var subscription = await client.SubscribeAsync(queue);
        for (var i = 0; i < 5; i++)
        {
            await producer.SendAsync(queue, $"m{i}", Clients.Receipted);
        }

        await StaysConnectedAsync(client, states, Idle);

        Assert.Equal(["m0", "m1", "m2", "m3", "m4"], await subscription.NextTextsAsync(5));
        Assert.Empty(states.Transitions);
    }

    // Watches the state for a while (the one place these tests wait for time itself: "stays connected" is about time).
    private static async Task StaysConnectedAsync(StompClient client, StateRecorder states, TimeSpan period)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < period)
        {
            Assert.True(states.Transitions.Count == 0, $"the connection dropped after {clock.Elapsed}: {states.Describe()}");
            await Task.Delay(50);
        }

        Assert.Equal(StompConnectionState.Connected, client.State);
        Assert.Empty(states.Transitions);
    }
}
