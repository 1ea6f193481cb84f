using System.Diagnostics;
using System.Net.Sockets;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Client.Tests;

/// <summary>Connecting and disconnecting: transports, CONNECT headers, timeouts, refusals, the state property and events.</summary>
public sealed class ConnectionTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Connects_negotiates_1_2_and_reports_the_broker(Transport transport)
    {
        var client = new StompClient(Clients.Options(Server, transport));
        var states = new StateRecorder(client);
        Assert.Equal(StompConnectionState.Disconnected, client.State);

        await client.ConnectAsync();

        Assert.Equal(StompConnectionState.Connected, client.State);
        Assert.Equal(StompVersion.V1_2, client.Version);
        Assert.StartsWith("StompBroker/", client.Server, StringComparison.Ordinal);
        Assert.StartsWith("session-", client.SessionId, StringComparison.Ordinal);

        await client.DisposeAsync();
        Assert.Equal(StompConnectionState.Closed, client.State);
        Assert.Equal(
            [(StompConnectionState.Disconnected, StompConnectionState.Connecting), (StompConnectionState.Connecting, StompConnectionState.Connected), (StompConnectionState.Connected, StompConnectionState.Closed)],
            states.Transitions);
    }

    [Fact]
    public async Task The_connect_frame_carries_login_passcode_virtual_host_and_heart_beats()
    {
        await using var fake = FakeStompServer.Answering();
        await using var client = await StompClient.ConnectAsync(Clients.Options(fake.Uri) with
        {
            Login = "alice",
            Passcode = "secret",
            VirtualHost = "vh1",
            HeartBeatOutgoing = TimeSpan.FromMilliseconds(1500),
            HeartBeatIncoming = TimeSpan.FromMilliseconds(2500),
        });

        var connect = Assert.Single(fake.Connects);
        Assert.Equal("CONNECT", connect["command"]);
        Assert.Equal("1.0,1.1,1.2", connect["accept-version"]);
        Assert.Equal("vh1", connect["host"]);
        Assert.Equal("alice", connect["login"]);
        Assert.Equal("secret", connect["passcode"]);
        Assert.Equal("1500,2500", connect["heart-beat"]);
        Assert.Equal("fake", client.Server);
        Assert.Equal("fake-1", client.SessionId);
    }

    [Fact]
    public async Task A_token_goes_as_the_passcode()
    {
        await using var fake = FakeStompServer.Answering();
        await using var client = await StompClient.ConnectAsync(Clients.Options(fake.Uri) with { Login = "svc", Passcode = "ignored", Token = "eyJ.token" });

        var connect = Assert.Single(fake.Connects);
        Assert.Equal("svc", connect["login"]);
        Assert.Equal("eyJ.token", connect["passcode"]);
    }

    [Fact]
    public async Task The_credential_provider_overrides_fixed_credentials()
    {
        await using var fake = FakeStompServer.Answering();
        var calls = 0;
        await using var client = await StompClient.ConnectAsync(Clients.Options(fake.Uri) with
        {
            Login = "fixed",
            Passcode = "fixed",
            CredentialProvider = _ => ValueTask.FromResult(new StompCredentials("fresh", $"token-{Interlocked.Increment(ref calls)}")),
        });

        var connect = Assert.Single(fake.Connects);
        Assert.Equal("fresh", connect["login"]);
        Assert.Equal("token-1", connect["passcode"]);
        Assert.Equal(1, calls);
    }

    [Fact]
    public async Task Connecting_to_a_peer_that_never_answers_fails_within_the_connect_timeout()
    {
        await using var silent = new FakeStompServer(_ => null);
        var clock = Stopwatch.StartNew();
        var client = new StompClient(Clients.Options(silent.Uri) with { ConnectTimeout = TimeSpan.FromMilliseconds(700) });
        var states = new StateRecorder(client);

        var error = await Assert.ThrowsAsync<StompConnectionException>(() => client.ConnectAsync());

        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(600), TimeSpan.FromSeconds(5));
        Assert.Contains("no CONNECTED", error.Message, StringComparison.Ordinal);
        Assert.Single(silent.Connects); // the CONNECT was sent and read; only the answer never came
        Assert.Equal(StompConnectionState.Disconnected, client.State);
        Assert.Equal((StompConnectionState.Connecting, StompConnectionState.Disconnected), states.Transitions[^1]);
        Assert.IsType<StompConnectionException>(states.Events[^1].Error);
        await client.DisposeAsync();
    }

    [Fact]
    public async Task Connecting_to_a_closed_port_fails_with_a_connection_exception()
    {
        var port = BrokerServer.FreePort();
        var error = await Assert.ThrowsAsync<StompConnectionException>(() => StompClient.ConnectAsync(Clients.Options(new Uri($"tcp://127.0.0.1:{port}"))));
        Assert.IsType<SocketException>(error.InnerException);
    }

    [Fact]
    public async Task A_refused_connect_surfaces_the_brokers_error_message()
    {
        await using var refusing = new FakeStompServer(_ => "ERROR\nmessage:access refused for user 'mallory'\ncontent-type:text/plain\n\nbad credentials\0");

        var error = await Assert.ThrowsAsync<StompErrorException>(() => StompClient.ConnectAsync(Clients.Options(refusing.Uri) with { Login = "mallory", Passcode = "x" }));

        Assert.Equal("access refused for user 'mallory'", error.Message);
        Assert.Equal("bad credentials", error.Details);
        Assert.Contains(error.Headers, h => h.Key == "message");
    }

    [Fact]
    public async Task A_connect_cancelled_by_the_caller_throws_operation_cancelled()
    {
        await using var silent = new FakeStompServer(_ => null);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var client = new StompClient(Clients.Options(silent.Uri) with { ConnectTimeout = TimeSpan.FromSeconds(30) });

        var clock = Stopwatch.StartNew();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.ConnectAsync(cts.Token));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"cancellation took {clock.Elapsed}");
        await client.DisposeAsync();
    }

    [Fact]
    public async Task Operations_before_connect_and_after_dispose_throw()
    {
        var client = new StompClient(Clients.Options(Server, Transport.Tcp));
        var queue = Unique.Queue();
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await client.SendAsync(queue, "x"));

        await client.ConnectAsync();
        await client.DisposeAsync();
        await client.DisposeAsync(); // twice is fine

        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await client.SendAsync(queue, "x"));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await client.SubscribeAsync(queue));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => client.ConnectAsync());
    }

    [Fact]
    public async Task An_unsupported_scheme_is_refused()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => StompClient.ConnectAsync(Clients.Options(new Uri("http://127.0.0.1:1/"))));
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Dispose_disconnects_after_every_earlier_frame_is_processed(Transport transport)
    {
        var queue = Unique.Queue("bye");
        var client = await Clients.ConnectAsync(Server, transport);
        for (var i = 0; i < 50; i++)
        {
            await client.SendAsync(queue, $"m{i}"); // no receipts: DISCONNECT's receipt covers them all
        }

        await client.DisposeAsync();

        Assert.Equal(50, Server.QueueDepth(queue));
    }

    [Fact]
    public async Task A_peer_that_does_not_speak_stomp_fails_the_connect_with_a_connection_exception()
    {
        await using var http = new FakeStompServer(_ => "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");

        var error = await Assert.ThrowsAsync<StompConnectionException>(() => StompClient.ConnectAsync(Clients.Options(http.Uri)));

        Assert.IsType<StompProtocolException>(error.InnerException);
    }

    [Fact]
    public async Task Frames_that_arrive_together_are_all_handled_at_once()
    {
        // One TCP write carries the RECEIPT of a SUBSCRIBE and two MESSAGEs; no heart-beats, nothing follows. Each must be
        // handled without waiting for more bytes.
        await using var fake = new FakeStompServer(_ => "CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0")
        {
            Reply = frame => frame["command"] == "SUBSCRIBE"
                ? $"MESSAGE\nsubscription:{frame["id"]}\nmessage-id:1\ndestination:/queue/a\n\none\0\nMESSAGE\nsubscription:{frame["id"]}\nmessage-id:2\ndestination:/queue/a\n\ntwo\0"
                : null,
        };
        await using var client = await StompClient.ConnectAsync(Clients.Options(fake.Uri) with { HeartBeatIncoming = TimeSpan.Zero, HeartBeatOutgoing = TimeSpan.Zero });

        await using var subscription = await client.SubscribeAsync("/queue/a").AsTask().WaitAsync(TimeSpan.FromSeconds(2));

        Assert.Equal("one", (await subscription.NextAsync(TimeSpan.FromSeconds(2))).BodyText);
        Assert.Equal("two", (await subscription.NextAsync(TimeSpan.FromSeconds(2))).BodyText);
    }
}
