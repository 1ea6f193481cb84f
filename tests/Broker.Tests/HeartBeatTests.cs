using System.Diagnostics;
using System.Net.WebSockets;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests;

/// <summary>
/// A broker with fast heart-beats on both listeners: the server can send one every 200 ms and wants one every 300 ms
/// (so a client promising 200 ms is held to 300 ms, times a tolerance of 4: closed after 1.2 s of silence; wide enough
/// that a stall on a loaded 2-core CI machine does not count as silence).
/// </summary>
public sealed class FastHeartBeatBrokerFixture : IAsyncLifetime
{
    public BrokerServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await BrokerServer.StartAsync(
        "Broker:Tcp:HeartBeat:SendMs=200",
        "Broker:Tcp:HeartBeat:ReceiveMs=300",
        "Broker:Tcp:HeartBeat:MinMs=100",
        "Broker:Tcp:HeartBeat:Tolerance=4",
        "Broker:WebSocket:HeartBeat:SendMs=200",
        "Broker:WebSocket:HeartBeat:ReceiveMs=300",
        "Broker:WebSocket:HeartBeat:MinMs=100",
        "Broker:WebSocket:HeartBeat:Tolerance=4");

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>Heart-beat negotiation, sending and the dead-peer check (checklist 27-32).</summary>
public sealed class HeartBeatTests(FastHeartBeatBrokerFixture broker) : IClassFixture<FastHeartBeatBrokerFixture>
{
    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task The_server_sends_heart_beats_to_an_idle_client_that_asks(Transport transport)
    {
        await using var client = await Server.OpenAsync(transport);
        var connected = await client.ConnectAsync(heartBeat: "0,200");
        Assert.Equal("200,300", connected["heart-beat"]);

        // ~1.5 s idle at one beat per 200 ms: well over 3 beats.
        var clock = Stopwatch.StartNew();
        while (client.HeartBeatsReceived < 4 && clock.Elapsed < TimeSpan.FromSeconds(5))
        {
            Assert.Null(await client.TryReceiveAsync(TimeSpan.FromMilliseconds(250)));
        }

        Assert.True(client.HeartBeatsReceived >= 4, $"only {client.HeartBeatsReceived} heart-beats in {clock.ElapsedMilliseconds} ms");
        // Not much faster than asked either: at most one per ~100 ms.
        Assert.True(clock.ElapsedMilliseconds >= 400, $"4 heart-beats came within {clock.ElapsedMilliseconds} ms");
        await client.AssertAliveAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp, "0,0")]
    [InlineData(Transport.Tcp, "200,0")]
    [InlineData(Transport.WebSocket, "0,0")]
    public async Task The_server_sends_no_heart_beats_to_a_client_that_does_not_ask(Transport transport, string heartBeat)
    {
        await using var client = await Server.OpenAsync(transport);
        await client.ConnectAsync(heartBeat: heartBeat);
        using var beating = new CancellationTokenSource();
        var beats = heartBeat == "0,0" ? Task.CompletedTask : BeatAsync(client, TimeSpan.FromMilliseconds(100), beating.Token);

        await client.ExpectNothingAsync(700);
        Assert.Equal(0, client.HeartBeatsReceived);
        await beating.CancelAsync();
        await beats;
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_silent_client_that_promised_heart_beats_is_closed(Transport transport)
    {
        await using var client = await Server.OpenAsync(transport);
        var clock = Stopwatch.StartNew();
        await client.ConnectAsync(heartBeat: "200,0");

        var error = await client.ExpectErrorAsync();
        var elapsed = clock.ElapsedMilliseconds;
        Assert.Equal("heart-beat timeout", error["message"]);
        Assert.Empty(await client.ExpectClosedAsync());
        // Negotiated max(200, 300) ms, tolerance 4: closed after about 1.2 s of silence.
        Assert.InRange(elapsed, 1150, 4000);
        if (transport == Transport.WebSocket)
        {
            Assert.Equal(WebSocketCloseStatus.PolicyViolation, client.CloseStatus);
        }

        await Server.AssertStillServesOthersAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_client_sending_heart_beats_stays_connected(Transport transport)
    {
        await using var client = await Server.OpenAsync(transport);
        await client.ConnectAsync(heartBeat: "200,0");
        using var beating = new CancellationTokenSource();
        var beats = BeatAsync(client, TimeSpan.FromMilliseconds(50), beating.Token);

        // Three times the timeout, idle but for EOLs.
        await client.ExpectNothingAsync(3600);
        await beating.CancelAsync();
        await beats;
        await client.AssertAliveAsync();

        // Once the beats stop, the timeout applies.
        var error = await client.ExpectErrorAsync();
        Assert.Equal("heart-beat timeout", error["message"]);
    }

    [Fact]
    public async Task A_heart_beat_header_that_is_not_two_integers_is_an_error()
    {
        await using var client = await Server.OpenAsync(Transport.Tcp);
        await client.SendRawAsync("CONNECT\naccept-version:1.2\nhost:/\nheart-beat:fast\n\n\0");
        await client.ExpectErrorThenCloseAsync();
    }

    private static async Task BeatAsync(StompTestClient client, TimeSpan every, CancellationToken stop)
    {
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await client.SendRawAsync("\n", CancellationToken.None); // a cancelled WebSocket send would abort the socket
                await Task.Delay(every, stop);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
