using System.Globalization;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using Broker.Tests.Infrastructure;
using Microsoft.Extensions.Logging;

namespace Broker.Client.Tests;

/// <summary>
/// Automatic reconnect: the broker stops and starts again on the same ports; the client goes Reconnecting then
/// Connected, asks for fresh credentials, subscribes again, and loses nothing it was given a receipt for.
/// </summary>
public sealed class ReconnectTests
{
    private const string Connected = "CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0";

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task After_a_broker_restart_subscriptions_come_back_with_fresh_credentials(Transport transport)
    {
        // The password is rotated during the outage: the restarted broker only admits the new one, so the client gets
        // back in only if it asks the credential provider again.
        var first = await BrokerServer.StartAsync(Credentials.User("app", "password-1"));
        BrokerServer? second = null;
        try
        {
            var credentialCalls = 0;
            var password = "password-1";
            await using var client = await StompClient.ConnectAsync(Clients.Options(first, transport) with
            {
                CredentialProvider = _ =>
                {
                    Interlocked.Increment(ref credentialCalls);
                    return ValueTask.FromResult(new StompCredentials("app", Volatile.Read(ref password)));
                },
            });
            var states = new StateRecorder(client);
            var firstSession = client.SessionId;
            var queue = Unique.Queue("survivor");
            var topic = Unique.Topic("survivor");
            await using var queueSubscription = await client.SubscribeAsync(queue, new StompSubscribeOptions { AckMode = StompAckMode.ClientIndividual });
            await using var topicSubscription = await client.SubscribeAsync(topic);
            await client.SendAsync(queue, "before", Clients.Receipted);
            var before = await queueSubscription.NextAsync();
            Assert.Equal(1, credentialCalls);

            await first.DisposeAsync();
            await states.WaitForAsync(StompConnectionState.Connected, StompConnectionState.Reconnecting);
            Assert.NotNull(states.Events.First(e => e.Current == StompConnectionState.Reconnecting).Error);

            // A receipted send made during the outage waits for the connection (or fails): it is never lost silently.
            var during = client.SendAsync(queue, "during", Clients.Receipted).AsTask();

            Volatile.Write(ref password, "password-2");
            second = await BrokerServer.StartAsync(Credentials.User("app", "password-2"), $"Broker:Tcp:Port={first.TcpPort}", $"Broker:WebSocket:Port={first.WebSocketPort}");
            Assert.Equal(first.TcpPort, second.TcpPort);
            await states.WaitForAsync(StompConnectionState.Reconnecting, StompConnectionState.Connected, TimeSpan.FromSeconds(20));
            Assert.Equal(StompConnectionState.Connected, client.State);
            Assert.NotEqual(firstSession, client.SessionId);
            Assert.True(credentialCalls >= 2, $"the credential provider was called {credentialCalls} times");

            var duringReceipted = true;
            try
            {
                await during.WaitAsync(Clients.Deadline);
            }
            catch (StompConnectionException)
            {
                duringReceipted = false;
            }

            // A message from the lost connection needs no ACK (the broker took it back); acking it is harmless.
            await before.AckAsync();

            await client.SendAsync(queue, "after", Clients.Receipted);
            await client.SendAsync(topic, "after-topic", Clients.Receipted);
            var expected = duringReceipted ? new[] { "during", "after" } : ["after"];
            var received = new List<string>();
            foreach (var _ in expected)
            {
                var message = await queueSubscription.NextAsync();
                received.Add(message.BodyText);
                await message.AckAsync();
            }

            Assert.Equal(expected, received);
            Assert.Equal("after-topic", (await topicSubscription.NextAsync()).BodyText);
            Assert.Equal(0, second.QueueDepth(queue));
            Assert.Equal(StompConnectionState.Connected, client.State);

            // The old password no longer works: the broker checked what the provider gave.
            var refused = await Assert.ThrowsAsync<StompErrorException>(() => StompClient.ConnectAsync(Clients.Options(second, transport) with { Login = "app", Passcode = "password-1" }));
            Assert.Equal("access refused: bad login or passcode", refused.Message);
        }
        finally
        {
            await first.DisposeAsync();
            if (second is not null)
            {
                await second.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_lost_connection_is_repaired_and_subscriptions_and_handlers_resume()
    {
        await using var server = await BrokerServer.StartAsync();
        await using var client = await Clients.ConnectAsync(server, Transport.Tcp);
        var states = new StateRecorder(client);
        var queue = Unique.Queue("handled");
        var handled = Channel.CreateUnbounded<string>();
        await using var subscription = await client.SubscribeAsync(
            queue,
            async (message, ct) => await handled.Writer.WriteAsync(message.BodyText, ct),
            new StompSubscribeOptions { AckMode = StompAckMode.ClientIndividual });

        // An ERROR from the broker ends the connection.
        await Assert.ThrowsAsync<StompErrorException>(async () => await client.SendAsync("/nope/x", "x", Clients.Receipted));
        await states.WaitForAsync(StompConnectionState.Reconnecting, StompConnectionState.Connected);

        await client.SendAsync(queue, "after", Clients.Receipted);
        using var cts = new CancellationTokenSource(Clients.Deadline);
        Assert.Equal("after", await handled.Reader.ReadAsync(cts.Token));
        await Wait.UntilAsync(() => server.QueueDepth(queue) == 0, Clients.Deadline, "the handled message acked");
    }

    [Fact]
    public async Task Reconnect_backs_off_exponentially_with_jitter_up_to_the_limit_then_gives_up()
    {
        var minDelay = TimeSpan.FromMilliseconds(100);
        var maxDelay = TimeSpan.FromMilliseconds(400);
        const int maxAttempts = 6;
        await using var fake = new FakeStompServer(n => n == 1 ? Connected : ""); // then every reconnect is cut at once
        var credentialCalls = 0;
        var logs = new CapturingLoggerProvider();
        using var loggers = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Information));
        var client = await StompClient.ConnectAsync(Clients.Options(fake.Uri) with
        {
            Reconnect = new StompReconnectOptions { MinDelay = minDelay, MaxDelay = maxDelay, MaxAttempts = maxAttempts },
            CredentialProvider = _ => ValueTask.FromResult(new StompCredentials(null, $"t{Interlocked.Increment(ref credentialCalls)}")),
            LoggerFactory = loggers,
        });
        var states = new StateRecorder(client);
        var queue = Unique.Queue("doomed");
        var subscription = await client.SubscribeAsync(queue);

        fake.DropAll();
        await states.WaitForAsync(StompConnectionState.Reconnecting, StompConnectionState.Closed, TimeSpan.FromSeconds(15));

        var attempts = fake.AcceptedAt.ToArray()[1..];
        Assert.Equal(maxAttempts, attempts.Length);
        Assert.Equal(1 + maxAttempts, credentialCalls);
        // The delays the client chose (it logs each before it waits): 50-100 % of a nominal delay that doubles from
        // MinDelay and stops at MaxDelay. A fixed 100 ms would fail the lower bounds, an uncapped one the upper ones.
        var chosen = logs.Entries.Select(e => Regex.Match(e.Message, @"^Reconnecting to .* in (\d+) ms \(attempt (\d+)\)$"))
            .Where(m => m.Success).Select(m => TimeSpan.FromMilliseconds(long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture))).ToArray();
        Assert.Equal(maxAttempts, chosen.Length);
        var nominal = minDelay;
        for (var i = 0; i < chosen.Length; i++)
        {
            Assert.InRange(chosen[i], (nominal * 0.5) - TimeSpan.FromMilliseconds(1), nominal);
            nominal = TimeSpan.FromTicks(Math.Min(nominal.Ticks * 2, maxDelay.Ticks));
        }

        // And the client really waited them: each try came no sooner than its delay after the one before (later is the
        // machine's scheduling, not the client's choice, so it is not bounded here).
        var gaps = attempts.Zip(attempts[1..], (a, b) => b - a).ToArray();
        for (var i = 0; i < gaps.Length; i++)
        {
            Assert.True(gaps[i] >= chosen[i + 1] - TimeSpan.FromMilliseconds(20), $"try {i + 2} came {gaps[i].TotalMilliseconds:0} ms after try {i + 1}, before its {chosen[i + 1].TotalMilliseconds:0} ms delay");
        }

        Assert.Equal(StompConnectionState.Closed, client.State);
        var closed = states.Events[^1];
        Assert.Equal(StompConnectionState.Closed, closed.Current);
        Assert.NotNull(closed.Error);

        // Everything waiting on the client learns it is over.
        var ended = await Assert.ThrowsAsync<ChannelClosedException>(async () => await subscription.ReceiveAsync());
        Assert.IsType<StompConnectionException>(ended.InnerException);
        await Assert.ThrowsAsync<StompConnectionException>(async () => await client.SendAsync(queue, "x"));
        await client.DisposeAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task With_reconnect_disabled_a_lost_connection_closes_the_client(Transport transport)
    {
        var server = await BrokerServer.StartAsync();
        try
        {
            await using var client = await Clients.ConnectAsync(server, transport, o => o with { Reconnect = StompReconnectOptions.Disabled });
            var states = new StateRecorder(client);
            var subscription = await client.SubscribeAsync(Unique.Queue("gone"));

            await server.StopAsync();

            await states.WaitForAsync(StompConnectionState.Connected, StompConnectionState.Closed);
            Assert.Single(states.Transitions);
            await Assert.ThrowsAsync<ChannelClosedException>(async () => await subscription.ReceiveAsync());
            await Assert.ThrowsAsync<StompConnectionException>(async () => await client.SendAsync(Unique.Queue(), "x"));
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_pending_receipt_fails_when_the_connection_is_lost()
    {
        // The fake takes the SEND and never answers; then the connection drops: the caller learns the send is in doubt.
        await using var fake = new FakeStompServer(_ => Connected) { SendsReceipts = false };
        await using var client = await StompClient.ConnectAsync(Clients.Options(fake.Uri) with { Reconnect = StompReconnectOptions.Disabled });
        var sending = client.SendAsync(Unique.Queue(), "in doubt", Clients.Receipted).AsTask();
        await Wait.UntilAsync(() => fake.Frames.Any(f => f["command"] == "SEND"), Clients.Deadline, "the fake to get the SEND");
        Assert.False(sending.IsCompleted);

        fake.DropAll();

        await Assert.ThrowsAsync<StompConnectionException>(() => sending.WaitAsync(Clients.Deadline));
    }

    [Fact]
    public async Task Reconnect_keeps_trying_through_attempts_that_fail_in_any_way()
    {
        // Attempt 1: the "broker" answers HTTP; attempt 2: the credential provider throws; attempt 3 gets in.
        await using var fake = new FakeStompServer(n => n == 2 ? "HTTP/1.1 502 Bad Gateway\r\n\r\n" : Connected);
        var credentialCalls = 0;
        await using var client = await StompClient.ConnectAsync(Clients.Options(fake.Uri) with
        {
            CredentialProvider = _ => Interlocked.Increment(ref credentialCalls) == 3
                ? throw new HttpRequestException("token service unavailable")
                : ValueTask.FromResult(new StompCredentials("app", "token")),
        });
        var states = new StateRecorder(client);

        fake.DropAll();

        await states.WaitForAsync(StompConnectionState.Reconnecting, StompConnectionState.Connected);
        Assert.Equal(4, credentialCalls);
        Assert.Equal(3, fake.Connects.Count);
        await client.SendAsync(Unique.Queue(), "works", Clients.Receipted);
    }
}
