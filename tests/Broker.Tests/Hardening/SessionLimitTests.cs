using System.Net.WebSockets;
using Broker.Backends.InMemory;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Hardening;

/// <summary>3 subscriptions, 2 open transactions and 5 frames per transaction per connection.</summary>
public sealed class SessionLimitsBrokerFixture : IAsyncLifetime
{
    public const int MaxSubscriptions = 3;
    public const int MaxTransactions = 2;
    public const int MaxFramesPerTransaction = 5;

    public BrokerServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await BrokerServer.StartAsync(
        $"Broker:Limits:MaxSubscriptionsPerConnection={MaxSubscriptions}",
        $"Broker:Limits:MaxTransactionsPerConnection={MaxTransactions}",
        $"Broker:Limits:MaxFramesPerTransaction={MaxFramesPerTransaction}");

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>
/// Per-connection limits on subscriptions, open transactions and frames in one transaction: the right ERROR (with the
/// receipt-id asked for), the connection closed, other connections unaffected, and nothing of the refused connection's
/// open transactions delivered. Tests in a class run one at a time, so each one's metrics are its own.
/// </summary>
public sealed class SessionLimitTests(SessionLimitsBrokerFixture broker) : IClassFixture<SessionLimitsBrokerFixture>
{
    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task One_subscription_over_the_limit_is_refused(Transport transport)
    {
        using var metrics = new MetricsRecorder(Server);
        await using var bystander = await Server.ConnectClientAsync(transport);
        await bystander.SubscribeAsync(Unique.Topic(), "b1");
        await bystander.SubscribeAsync(Unique.Topic(), "b2");

        await using var client = await Server.ConnectClientAsync(transport);
        var queue = Unique.Queue("kept");
        await client.SubscribeAsync(queue, "s0");
        await client.SubscribeAsync(Unique.Topic(), "s1");

        // Ending a subscription gives its slot back.
        await client.SendWithReceiptAsync(StompCommand.Unsubscribe, ("id", "s1"));
        await client.SubscribeAsync(Unique.Topic(), "s1b");
        await client.SubscribeAsync(Unique.Topic(), "s2");

        await client.SendFrameAsync(StompCommand.Subscribe, [("destination", Unique.Topic()), ("id", "s3"), ("receipt", "r-s3")]);
        var error = await client.ExpectErrorThenCloseAsync("r-s3");
        Assert.Equal("too many subscriptions", error["message"]);
        Assert.Contains($"at most {SessionLimitsBrokerFixture.MaxSubscriptions} subscriptions", error.BodyText, StringComparison.Ordinal);
        if (transport == Transport.WebSocket)
        {
            Assert.Equal(WebSocketCloseStatus.PolicyViolation, client.CloseStatus);
        }

        Assert.Equal(1, metrics.Breaches("subscriptions"));

        // Its subscriptions are gone with it: a queue message now waits for the next consumer instead.
        await Server.WaitForConnectionCountAsync(1);
        await bystander.SendAsync(queue, "after", receipt: true);
        Assert.Equal(1, Server.GetService<InMemoryBackend>().GetQueueDepth(Unique.QueueName(queue)));

        await bystander.AssertAliveAsync(); // subscribes: the bystander's own third, within its limit
        await Server.AssertStillServesOthersAsync();
    }

    [Fact]
    public async Task Temporary_queues_count_as_subscriptions()
    {
        // Each reply-to:/temp-queue/NAME creates a subscription (/temp-queue/NAME) the client never sent a SUBSCRIBE
        // for; without the limit a client could create them without bound.
        using var metrics = new MetricsRecorder(Server);
        await using var client = await Server.ConnectClientAsync();
        var queue = Unique.Queue();
        for (var i = 0; i < SessionLimitsBrokerFixture.MaxSubscriptions; i++)
        {
            await client.SendAsync(queue, "request", receipt: true, ("reply-to", $"/temp-queue/t{i}"));
        }

        await client.SendFrameAsync(StompCommand.Send, [("destination", queue), ("reply-to", "/temp-queue/one-too-many"), ("receipt", "r-over")], "request"u8.ToArray());
        var error = await client.ExpectErrorThenCloseAsync("r-over");
        Assert.Equal("too many subscriptions", error["message"]);
        Assert.Equal(1, metrics.Breaches("subscriptions"));

        // Only the three accepted requests reached the queue.
        Assert.Equal(SessionLimitsBrokerFixture.MaxSubscriptions, Server.GetService<InMemoryBackend>().GetQueueDepth(Unique.QueueName(queue)));
        await Server.AssertStillServesOthersAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task One_open_transaction_over_the_limit_is_refused_and_none_of_its_open_transactions_is_delivered(Transport transport)
    {
        using var metrics = new MetricsRecorder(Server);
        var queue = Unique.Queue();
        await using var consumer = await Server.ConnectClientAsync();
        await consumer.SubscribeAsync(queue, "c");
        await using var client = await Server.ConnectClientAsync(transport);

        // Two open at once is the limit; committing one frees its slot.
        await client.SendWithReceiptAsync(StompCommand.Begin, ("transaction", "t1"));
        await client.SendWithReceiptAsync(StompCommand.Begin, ("transaction", "t2"));
        await client.SendAsync(queue, "committed", receipt: true, ("transaction", "t1"));
        await client.SendWithReceiptAsync(StompCommand.Commit, ("transaction", "t1"));
        Assert.Equal("committed", (await consumer.ReceiveMessageAsync()).BodyText);
        await client.SendWithReceiptAsync(StompCommand.Begin, ("transaction", "t3"));
        await client.SendAsync(queue, "open-t2", receipt: true, ("transaction", "t2"));
        await client.SendAsync(queue, "open-t3", receipt: true, ("transaction", "t3"));

        await client.SendFrameAsync(StompCommand.Begin, [("transaction", "t4"), ("receipt", "r-t4")]);
        var error = await client.ExpectErrorThenCloseAsync("r-t4");
        Assert.Equal("too many open transactions", error["message"]);
        Assert.Contains($"at most {SessionLimitsBrokerFixture.MaxTransactions} open transactions", error.BodyText, StringComparison.Ordinal);
        Assert.Equal(1, metrics.Breaches("transactions"));

        // The uncommitted sends of t2 and t3 died with the connection: the consumer gets only the next message.
        await Server.WaitForConnectionCountAsync(1);
        await using var producer = await Server.ConnectClientAsync();
        await producer.SendAsync(queue, "next", receipt: true);
        Assert.Equal("next", (await consumer.ReceiveMessageAsync()).BodyText);
        await consumer.ExpectNothingAsync(200);
        await Server.AssertStillServesOthersAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task One_frame_over_the_transaction_limit_is_refused_and_the_transaction_is_discarded(bool acks)
    {
        using var metrics = new MetricsRecorder(Server);
        var queue = Unique.Queue();
        await using var producer = await Server.ConnectClientAsync();
        await using var client = await Server.ConnectClientAsync();
        await using var bystander = await Server.ConnectClientAsync();
        await bystander.SendWithReceiptAsync(StompCommand.Begin, ("transaction", "tb"));

        List<ReceivedFrame> messages = [];
        if (acks)
        {
            // ACKs inside a transaction count too: six messages to acknowledge, one by one, in one transaction.
            for (var i = 0; i < SessionLimitsBrokerFixture.MaxFramesPerTransaction + 1; i++)
            {
                await producer.SendAsync(queue, $"m{i}", receipt: true);
            }

            await client.SubscribeAsync(queue, "s", "client-individual");
            messages = await client.ReceiveMessagesAsync(SessionLimitsBrokerFixture.MaxFramesPerTransaction + 1);
        }
        else
        {
            await client.SubscribeAsync(queue, "s");
        }

        await client.SendWithReceiptAsync(StompCommand.Begin, ("transaction", "t"));
        for (var i = 0; i < SessionLimitsBrokerFixture.MaxFramesPerTransaction; i++)
        {
            if (acks)
            {
                await client.AckAsync(messages[i], receipt: true, ("transaction", "t"));
            }
            else
            {
                await client.SendAsync(queue, $"in-tx-{i}", receipt: true, ("transaction", "t"));
            }
        }

        // The bystander's own transaction is not affected by the client's.
        for (var i = 0; i < SessionLimitsBrokerFixture.MaxFramesPerTransaction; i++)
        {
            await bystander.SendAsync(queue, $"bystander-{i}", receipt: true, ("transaction", "tb"));
        }

        if (acks)
        {
            await client.SendFrameAsync(StompCommand.Ack, [("id", messages[^1]["ack"]!), ("transaction", "t"), ("receipt", "r-over")]);
        }
        else
        {
            await client.SendFrameAsync(StompCommand.Send, [("destination", queue), ("transaction", "t"), ("receipt", "r-over")], "over"u8.ToArray());
        }

        var error = await client.ExpectErrorThenCloseAsync("r-over");
        Assert.Equal("transaction too large", error["message"]);
        Assert.Contains($"at most {SessionLimitsBrokerFixture.MaxFramesPerTransaction} frames", error.BodyText, StringComparison.Ordinal);
        Assert.Equal(1, metrics.Breaches("transaction-frames"));

        await bystander.SendWithReceiptAsync(StompCommand.Commit, ("transaction", "tb"));
        await using var consumer = await Server.ConnectClientAsync();
        await consumer.SubscribeAsync(queue, "c");
        var expected = new List<string>();
        if (acks)
        {
            // Nothing was acknowledged: all six come back, marked redelivered, before the bystander's five.
            expected.AddRange(Enumerable.Range(0, SessionLimitsBrokerFixture.MaxFramesPerTransaction + 1).Select(i => $"m{i}"));
        }

        expected.AddRange(Enumerable.Range(0, SessionLimitsBrokerFixture.MaxFramesPerTransaction).Select(i => $"bystander-{i}"));
        var received = await consumer.ReceiveMessagesAsync(expected.Count);
        Assert.Equal(expected, received.Select(m => m.BodyText));
        Assert.All(received.Take(acks ? SessionLimitsBrokerFixture.MaxFramesPerTransaction + 1 : 0), m => Assert.Equal("true", m["redelivered"]));
        await consumer.ExpectNothingAsync(200);
        await bystander.AssertAliveAsync();
    }
}
