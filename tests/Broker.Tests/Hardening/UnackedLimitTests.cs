using Broker.Backends.InMemory;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Hardening;

/// <summary>A broker that lets a connection hold at most 3 unacknowledged messages.</summary>
public sealed class UnackedLimitBrokerFixture : IAsyncLifetime
{
    public const int MaxUnacked = 3;

    public BrokerServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await BrokerServer.StartAsync($"Broker:Limits:MaxUnackedPerConnection={MaxUnacked}");

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>
/// Unacknowledged messages per connection, over all its subscriptions: queue messages beyond the limit wait in their
/// queue and come once something is acknowledged (none lost, none twice); a topic message beyond it ends the connection
/// with an ERROR, since a topic cannot keep it.
/// </summary>
public sealed class UnackedLimitTests(UnackedLimitBrokerFixture broker) : IClassFixture<UnackedLimitBrokerFixture>
{
    private const int Max = UnackedLimitBrokerFixture.MaxUnacked;

    private BrokerServer Server => broker.Server;

    private InMemoryBackend Backend => Server.GetService<InMemoryBackend>();

    [Theory]
    [InlineData(Transport.Tcp, "client-individual")]
    [InlineData(Transport.WebSocket, "client")]
    public async Task Queue_messages_beyond_the_limit_wait_in_the_queue_until_an_ack(Transport transport, string ackMode)
    {
        const int total = 10;
        var queue = Unique.Queue();
        await FillAsync(queue, total);

        await using var consumer = await Server.ConnectClientAsync(transport);
        await consumer.SubscribeAsync(queue, "s", ackMode);
        var held = await consumer.ReceiveMessagesAsync(Max);
        await consumer.ExpectNothingAsync(300);
        Assert.Equal(total - Max, Backend.GetQueueDepth(Unique.QueueName(queue)));

        // Another connection has its own budget.
        await using (var other = await Server.ConnectClientAsync())
        {
            await other.SubscribeAsync(queue, "o", "client-individual");
            Assert.Equal(Max, (await other.ReceiveMessagesAsync(Max)).Count);
            await other.ExpectNothingAsync(200);
        } // closed without acking: its three go back to the queue

        // Each ACK lets exactly as many more in as it settled.
        var bodies = held.Select(m => m.BodyText).ToList();
        while (bodies.Count < total)
        {
            await consumer.AckAsync(held[0], receipt: false); // the next MESSAGE may come before a RECEIPT would
            held.RemoveAt(0);
            var next = await consumer.ReceiveMessageAsync();
            held.Add(next);
            bodies.Add(next.BodyText);
        }

        foreach (var message in held)
        {
            await consumer.AckAsync(message);
        }

        // Every message exactly once (the other connection's three were given back and came here).
        Assert.Equal(Enumerable.Range(0, total).Select(i => $"m{i}").Order(), bodies.Order());
        Assert.Equal(0, Backend.GetQueueDepth(Unique.QueueName(queue)));
        await consumer.ExpectNothingAsync(200);
    }

    [Fact]
    public async Task An_ack_on_one_subscription_lets_in_messages_waiting_for_another()
    {
        // The limit is per connection: queue B's messages wait because of what subscription A holds, so acking on A
        // must wake B too, or B's messages stay in their queue while the connection has room.
        const int perQueue = 5;
        var queueA = Unique.Queue("a");
        var queueB = Unique.Queue("b");
        await FillAsync(queueA, perQueue);
        await FillAsync(queueB, perQueue);

        await using var consumer = await Server.ConnectClientAsync();
        await consumer.SubscribeAsync(queueA, "a", "client-individual");
        var held = await consumer.ReceiveMessagesAsync(Max);
        await consumer.SubscribeAsync(queueB, "b", "client-individual");
        await consumer.ExpectNothingAsync(200);

        var seen = held.Select(m => $"{m["subscription"]}:{m.BodyText}").ToList();
        while (seen.Count < 2 * perQueue)
        {
            await consumer.AckAsync(held[0], receipt: false);
            held.RemoveAt(0);
            var next = await consumer.TryReceiveAsync(TimeSpan.FromSeconds(5));
            Assert.True(next is not null, $"nothing arrived after an ACK with room for one; received so far: {string.Join(", ", seen)}; "
                + $"waiting: A {Backend.GetQueueDepth(Unique.QueueName(queueA))}, B {Backend.GetQueueDepth(Unique.QueueName(queueB))}");
            held.Add(next!);
            seen.Add($"{next!["subscription"]}:{next.BodyText}");
        }

        Assert.Equal(perQueue, seen.Count(s => s.StartsWith("a:", StringComparison.Ordinal)));
        Assert.Equal(perQueue, seen.Count(s => s.StartsWith("b:", StringComparison.Ordinal)));
        Assert.Equal(2 * perQueue, seen.Distinct().Count());
    }

    [Fact]
    public async Task A_topic_message_beyond_the_limit_ends_the_connection_and_its_queue_messages_go_back()
    {
        using var metrics = new MetricsRecorder(Server);
        var topic = Unique.Topic();
        var queue = Unique.Queue();
        await FillAsync(queue, 2);

        await using var client = await Server.ConnectClientAsync();
        await client.SubscribeAsync(queue, "q", "client");
        await client.SubscribeAsync(topic, "t", "client");
        await using var bystander = await Server.ConnectClientAsync();
        await bystander.SubscribeAsync(topic, "b", "client-individual");
        await using var producer = await Server.ConnectClientAsync();

        // Two queue messages and one topic message fill the budget; the next topic message breaks it.
        await producer.SendAsync(topic, "t0", receipt: true);
        await producer.SendAsync(topic, "t1", receipt: true);
        var frames = await client.ExpectClosedAsync();
        var error = frames[^1];
        Assert.Equal(StompCommand.Error, error.Command);
        Assert.Equal("too many unacknowledged messages", error["message"]);
        Assert.Equal(Max, frames.Count(f => f.Command == StompCommand.Message));
        Assert.Equal(1, metrics.Breaches("unacked"));

        // The bystander's budget is its own: it has both topic messages and keeps receiving.
        Assert.Equal(["t0", "t1"], (await bystander.ReceiveMessagesAsync(2)).Select(m => m.BodyText));

        // The client's unacknowledged queue messages went back to their queue.
        await Server.WaitForConnectionCountAsync(2);
        Assert.Equal(2, Backend.GetQueueDepth(Unique.QueueName(queue)));
        await Server.AssertStillServesOthersAsync();
    }

    private async Task FillAsync(string queue, int count)
    {
        await using var producer = await Server.ConnectClientAsync();
        for (var i = 0; i < count; i++)
        {
            await producer.SendAsync(queue, $"m{i}", receipt: i == count - 1);
        }
    }
}
