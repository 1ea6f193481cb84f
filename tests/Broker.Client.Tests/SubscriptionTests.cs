using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using Broker.Tests.Infrastructure;

namespace Broker.Client.Tests;

/// <summary>Subscriptions: IAsyncEnumerable and handlers, ack modes, ACK/NACK, prefetch-count, unsubscribe by disposing.</summary>
public sealed class SubscriptionTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Await_foreach_reads_messages_in_order(Transport transport)
    {
        await using var client = await Clients.ConnectAsync(Server, transport);
        var queue = Unique.Queue("foreach");
        await using var subscription = await client.SubscribeAsync(queue);
        for (var i = 0; i < 20; i++)
        {
            await client.SendAsync(queue, $"m{i}");
        }

        var received = new List<string>();
        using var deadline = new CancellationTokenSource(Clients.Deadline);
        await foreach (var message in subscription.WithCancellation(deadline.Token))
        {
            received.Add(message.BodyText);
            if (received.Count == 20)
            {
                break;
            }
        }

        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"m{i}"), received);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_topic_reaches_every_subscriber(Transport transport)
    {
        await using var publisher = await Clients.ConnectAsync(Server, transport);
        await using var listener = await Clients.ConnectAsync(Server, transport);
        var topic = Unique.Topic("news");
        await using var first = await listener.SubscribeAsync(topic);
        await using var second = await listener.SubscribeAsync(topic);

        await publisher.SendAsync(topic, "extra!", Clients.Receipted);

        Assert.Equal("extra!", (await first.NextAsync()).BodyText);
        Assert.Equal("extra!", (await second.NextAsync()).BodyText);
        Assert.NotEqual(first.Id, second.Id);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Disposing_a_subscription_unsubscribes_and_ends_its_stream(Transport transport)
    {
        await using var client = await Clients.ConnectAsync(Server, transport);
        var queue = Unique.Queue("unsub");
        var subscription = await client.SubscribeAsync(queue);
        await client.SendAsync(queue, "before", Clients.Receipted);
        Assert.Equal("before", (await subscription.NextAsync()).BodyText);

        await subscription.DisposeAsync();
        await client.SendAsync(queue, "after", Clients.Receipted);

        Assert.Equal(1, Server.QueueDepth(queue)); // nobody took it: the subscription is gone at the broker
        await Assert.ThrowsAsync<ChannelClosedException>(async () => await subscription.ReceiveAsync());
        await foreach (var message in subscription)
        {
            Assert.Fail($"the stream of a disposed subscription yielded {message.BodyText}");
        }

        await subscription.DisposeAsync(); // twice is fine
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Client_individual_ack_and_nack_settle_one_message_each(Transport transport)
    {
        await using var client = await Clients.ConnectAsync(Server, transport);
        var queue = Unique.Queue("ackind");
        var subscription = await client.SubscribeAsync(queue, new StompSubscribeOptions { AckMode = StompAckMode.ClientIndividual });
        await client.SendAsync(queue, "a", Clients.Receipted);
        await client.SendAsync(queue, "b", Clients.Receipted);
        await client.SendAsync(queue, "c", Clients.Receipted);

        var a = await subscription.NextAsync();
        var b = await subscription.NextAsync();
        var c = await subscription.NextAsync();
        await c.AckAsync();
        await b.NackAsync(); // requeued: comes back, marked redelivered

        var again = await subscription.NextAsync();
        Assert.Equal("b", again.BodyText);
        Assert.True(again.Redelivered);
        await again.AckAsync();

        // "a" was never settled: unsubscribing gives it back to the queue; "c" and "b" stay acknowledged.
        await subscription.DisposeAsync();
        await Wait.UntilAsync(() => Server.QueueDepth(queue) == 1, Clients.Deadline, "only the unacknowledged message back in the queue");
        Assert.Equal("a", a.BodyText);
    }

    [Fact]
    public async Task Nack_without_requeue_drops_the_message()
    {
        await using var client = await Clients.ConnectAsync(Server, Transport.Tcp);
        var queue = Unique.Queue("drop");
        await using var subscription = await client.SubscribeAsync(queue, new StompSubscribeOptions { AckMode = StompAckMode.ClientIndividual });
        await client.SendAsync(queue, "poison", Clients.Receipted);
        await client.SendAsync(queue, "next", Clients.Receipted);

        await (await subscription.NextAsync()).NackAsync(requeue: false);

        var next = await subscription.NextAsync();
        Assert.Equal("next", next.BodyText);
        await next.AckAsync();
        await client.SendAsync(queue, "marker", Clients.Receipted);
        Assert.Equal("marker", (await subscription.NextAsync()).BodyText); // "poison" did not come back before it
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Client_mode_ack_is_cumulative(Transport transport)
    {
        await using var client = await Clients.ConnectAsync(Server, transport);
        var queue = Unique.Queue("ackcum");
        var subscription = await client.SubscribeAsync(queue, new StompSubscribeOptions { AckMode = StompAckMode.Client });
        for (var i = 0; i < 4; i++)
        {
            await client.SendAsync(queue, $"m{i}", Clients.Receipted);
        }

        var messages = new List<StompMessage>();
        for (var i = 0; i < 4; i++)
        {
            messages.Add(await subscription.NextAsync());
        }

        await messages[2].AckAsync(); // settles m0, m1, m2

        await subscription.DisposeAsync();
        await Wait.UntilAsync(() => Server.QueueDepth(queue) == 1, Clients.Deadline, "only m3 back in the queue");
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Prefetch_count_bounds_unacknowledged_deliveries(Transport transport)
    {
        await using var client = await Clients.ConnectAsync(Server, transport);
        var queue = Unique.Queue("prefetch");
        await using var subscription = await client.SubscribeAsync(queue, new StompSubscribeOptions { AckMode = StompAckMode.ClientIndividual, PrefetchCount = 2 });
        for (var i = 0; i < 5; i++)
        {
            await client.SendAsync(queue, $"m{i}", Clients.Receipted);
        }

        Assert.Equal(3, Server.QueueDepth(queue)); // two went out; three wait for acks
        var first = await subscription.NextAsync();
        var second = await subscription.NextAsync();
        Assert.Equal(["m0", "m1"], new[] { first.BodyText, second.BodyText });

        await first.AckAsync();
        var third = await subscription.NextAsync();
        Assert.Equal("m2", third.BodyText);
        Assert.Equal(2, Server.QueueDepth(queue));

        await second.AckAsync();
        await third.AckAsync();
        Assert.Equal(["m3", "m4"], await subscription.NextTextsAsync(2));
        Assert.Equal(0, Server.QueueDepth(queue));
    }

    [Theory]
    [InlineData(Transport.Tcp, StompAckMode.ClientIndividual)]
    [InlineData(Transport.WebSocket, StompAckMode.Client)]
    public async Task A_handler_acks_what_it_handled_in_client_modes(Transport transport, StompAckMode mode)
    {
        await using var client = await Clients.ConnectAsync(Server, transport);
        var queue = Unique.Queue("handler");
        var handled = new ConcurrentQueue<string>();
        var subscription = await client.SubscribeAsync(
            queue,
            (message, _) =>
            {
                handled.Enqueue(message.BodyText);
                return ValueTask.CompletedTask;
            },
            new StompSubscribeOptions { AckMode = mode, PrefetchCount = 1 });

        // Prefetch 1: the third message can only arrive if the handler's ack of the first two went out.
        for (var i = 0; i < 3; i++)
        {
            await client.SendAsync(queue, $"m{i}");
        }

        await Wait.UntilAsync(() => handled.Count == 3, Clients.Deadline, "three messages handled");
        Assert.Equal(["m0", "m1", "m2"], handled);

        // Acked, not merely delivered: after unsubscribing nothing goes back to the queue.
        await Wait.UntilAsync(() => Server.QueueDepth(queue) == 0, Clients.Deadline, "the queue to be empty");
        await subscription.DisposeAsync();
        await client.SendAsync(queue, "marker", Clients.Receipted);
        Assert.Equal(1, Server.QueueDepth(queue));
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_handler_that_throws_nacks_and_the_message_is_redelivered(Transport transport)
    {
        await using var client = await Clients.ConnectAsync(Server, transport);
        var queue = Unique.Queue("nack");
        var attempts = new ConcurrentQueue<(string Body, bool Redelivered)>();
        await using var subscription = await client.SubscribeAsync(
            queue,
            (message, _) =>
            {
                attempts.Enqueue((message.BodyText, message.Redelivered));
                return attempts.Count == 1 ? throw new InvalidOperationException("first try fails") : ValueTask.CompletedTask;
            },
            new StompSubscribeOptions { AckMode = StompAckMode.ClientIndividual });

        await client.SendAsync(queue, "flaky", Clients.Receipted);

        await Wait.UntilAsync(() => attempts.Count >= 2, Clients.Deadline, "the message to be handled twice");
        Assert.Equal([("flaky", false), ("flaky", true)], attempts.Take(2));
        await Wait.UntilAsync(() => Server.QueueDepth(queue) == 0, Clients.Deadline, "the queue to be empty");
        Assert.Equal(StompConnectionState.Connected, client.State);
    }

    [Fact]
    public async Task A_handler_in_auto_mode_keeps_going_after_an_exception()
    {
        await using var client = await Clients.ConnectAsync(Server, Transport.Tcp);
        var queue = Unique.Queue("auto");
        var handled = new ConcurrentQueue<string>();
        await using var subscription = await client.SubscribeAsync(queue, (message, _) =>
        {
            handled.Enqueue(message.BodyText);
            return message.BodyText == "bad" ? throw new InvalidOperationException("boom") : ValueTask.CompletedTask;
        });

        await client.SendAsync(queue, "bad");
        await client.SendAsync(queue, "good", Clients.Receipted);

        await Wait.UntilAsync(() => handled.Count == 2, Clients.Deadline, "both handled");
        Assert.Equal(["bad", "good"], handled);
        Assert.Equal(StompConnectionState.Connected, client.State);
    }

    [Fact]
    public async Task A_handler_can_settle_messages_itself()
    {
        await using var client = await Clients.ConnectAsync(Server, Transport.Tcp);
        var queue = Unique.Queue("selfack");
        var handled = 0;
        await using var subscription = await client.SubscribeAsync(
            queue,
            async (message, ct) =>
            {
                await message.AckAsync(ct);
                Interlocked.Increment(ref handled);
            },
            new StompSubscribeOptions { AckMode = StompAckMode.ClientIndividual });

        await client.SendAsync(queue, "one", Clients.Receipted);
        await client.SendAsync(queue, "two", Clients.Receipted);

        await Wait.UntilAsync(() => Volatile.Read(ref handled) == 2, Clients.Deadline, "two handled");
        await client.SendAsync(queue, "probe", Clients.Receipted); // a double ACK would have drawn an ERROR and a reconnect
        await Wait.UntilAsync(() => Volatile.Read(ref handled) == 3, Clients.Deadline, "the probe handled");
        Assert.Equal(StompConnectionState.Connected, client.State);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Disposing_a_handler_subscription_with_messages_still_buffered_keeps_the_connection(Transport transport)
    {
        await using var client = await Clients.ConnectAsync(Server, transport);
        var states = new StateRecorder(client);
        var queue = Unique.Queue("busy");
        using var release = new SemaphoreSlim(0);
        var handled = 0;
        var subscription = await client.SubscribeAsync(
            queue,
            async (_, ct) =>
            {
                await release.WaitAsync(ct);
                Interlocked.Increment(ref handled);
            },
            new StompSubscribeOptions { AckMode = StompAckMode.ClientIndividual });
        for (var i = 0; i < 5; i++)
        {
            await client.SendAsync(queue, $"m{i}", Clients.Receipted);
        }

        await Wait.UntilAsync(() => Server.QueueDepth(queue) == 0, Clients.Deadline, "all five delivered");
        var disposing = subscription.DisposeAsync().AsTask();
        release.Release(5);
        await disposing.WaitAsync(Clients.Deadline);

        // Whatever the handler did not finish went back to the queue, and the connection never broke.
        await client.SendAsync(Unique.Queue(), "probe", Clients.Receipted);
        Assert.Empty(states.Transitions);
        await Wait.UntilAsync(() => Server.QueueDepth(queue) + Volatile.Read(ref handled) >= 5, Clients.Deadline, "every message either handled or back in the queue");
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Disposing_a_subscription_whose_buffer_is_full_is_prompt(Transport transport)
    {
        // The application reads nothing: m0 fills the buffer, the client's reader waits to hand over m1, and the rest
        // (and then the UNSUBSCRIBE's receipt) wait in the socket behind it.
        await using var client = await Clients.ConnectAsync(Server, transport, o => o with { SubscriptionBufferSize = 1 });
        await using var producer = await Clients.ConnectAsync(Server, transport);
        var queue = Unique.Queue("full");
        var subscription = await client.SubscribeAsync(queue);
        for (var i = 0; i < 10; i++)
        {
            await producer.SendAsync(queue, $"m{i}", Clients.Receipted);
        }

        await Wait.UntilAsync(() => Server.QueueDepth(queue) == 0, Clients.Deadline, "all ten sent to the client");
        var clock = Stopwatch.StartNew();
        await subscription.DisposeAsync().AsTask().WaitAsync(Clients.Deadline);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"dispose took {clock.Elapsed}");

        // The connection still works.
        var other = Unique.Queue("after");
        await using var next = await client.SubscribeAsync(other);
        await producer.SendAsync(other, "alive");
        Assert.Equal("alive", (await next.NextAsync()).BodyText);
    }

    [Fact]
    public async Task Acking_a_message_of_a_disposed_subscription_does_not_break_the_connection()
    {
        await using var client = await Clients.ConnectAsync(Server, Transport.Tcp);
        var states = new StateRecorder(client);
        var queue = Unique.Queue("late-ack");
        var subscription = await client.SubscribeAsync(queue, new StompSubscribeOptions { AckMode = StompAckMode.ClientIndividual });
        await client.SendAsync(queue, "m", Clients.Receipted);
        var message = await subscription.NextAsync();

        await subscription.DisposeAsync(); // the broker takes the unacked message back
        await message.AckAsync();

        await client.SendAsync(Unique.Queue(), "probe", Clients.Receipted);
        Assert.Empty(states.Transitions);
        Assert.Equal(1, Server.QueueDepth(queue));
    }
}
