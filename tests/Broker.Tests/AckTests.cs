using Broker.Backends.InMemory;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests;

/// <summary>ACK, NACK and the ack modes; prefetch; redelivery (checklist 39-47).</summary>
public sealed class AckTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => broker.Server;

    private async Task<(StompTestClient Client, List<ReceivedFrame> Messages)> ConsumeAsync(
        Transport transport, string queue, string ack, int count, params (string Name, string Value)[] extra)
    {
        var client = await Server.ConnectClientAsync(transport);
        await client.SubscribeAsync(queue, "sub", ack, extra);
        for (var i = 1; i <= count; i++)
        {
            await client.SendAsync(queue, $"m{i}");
        }

        return (client, await client.ReceiveMessagesAsync(count));
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Auto_mode_messages_count_as_acknowledged_when_sent(Transport transport)
    {
        var queue = Unique.Queue();
        var (client, messages) = await ConsumeAsync(transport, queue, "auto", 2);
        Assert.All(messages, m => Assert.Null(m["ack"]));
        await client.DisposeAsync();

        await using var next = await Server.ConnectClientAsync(transport);
        await next.SubscribeAsync(queue, "next");
        await next.ExpectNothingAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp, 3, new string[0])]
    [InlineData(Transport.Tcp, 2, new[] { "m3" })]
    [InlineData(Transport.Tcp, 1, new[] { "m2", "m3" })]
    [InlineData(Transport.WebSocket, 3, new string[0])]
    [InlineData(Transport.WebSocket, 2, new[] { "m3" })]
    public async Task Client_mode_ack_is_cumulative(Transport transport, int acked, string[] redelivered)
    {
        var queue = Unique.Queue();
        var (client, messages) = await ConsumeAsync(transport, queue, "client", 3);
        Assert.All(messages, m => Assert.False(string.IsNullOrEmpty(m["ack"])));

        await client.AckAsync(messages[acked - 1]);
        await client.SendWithReceiptAsync(StompCommand.Disconnect);
        await client.DisposeAsync();

        await using var next = await Server.ConnectClientAsync(transport);
        await next.SubscribeAsync(queue, "next");
        var again = await next.ReceiveMessagesAsync(redelivered.Length);
        Assert.Equal(redelivered, again.Select(m => m.BodyText));
        Assert.All(again, m => Assert.Equal("true", m["redelivered"]));
        await next.ExpectNothingAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Client_mode_nack_is_cumulative(Transport transport)
    {
        var queue = Unique.Queue();
        var (client, messages) = await ConsumeAsync(transport, queue, "client", 3);
        await using var _ = client;

        // No receipt: the redeliveries to this same subscription would come before it.
        await client.NackAsync(messages[1], receipt: false);

        var again = await client.ReceiveMessagesAsync(2);
        Assert.Equal(["m1", "m2"], again.Select(m => m.BodyText).Order());
        Assert.All(again, m => Assert.Equal("true", m["redelivered"]));
        await client.ExpectNothingAsync();

        // m3 is still unacknowledged and the redelivered ones are new deliveries: ACK of the last acks all.
        await client.AckAsync(again[1]);
        await client.SendWithReceiptAsync(StompCommand.Unsubscribe, ("id", "sub"));
        await using var next = await Server.ConnectClientAsync(transport);
        await next.SubscribeAsync(queue, "next");
        await next.ExpectNothingAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Client_individual_ack_affects_only_that_message(Transport transport)
    {
        var queue = Unique.Queue();
        var (client, messages) = await ConsumeAsync(transport, queue, "client-individual", 3);
        Assert.All(messages, m => Assert.False(string.IsNullOrEmpty(m["ack"])));

        await client.AckAsync(messages[1]);
        await client.SendWithReceiptAsync(StompCommand.Disconnect);
        await client.DisposeAsync();

        await using var next = await Server.ConnectClientAsync(transport);
        await next.SubscribeAsync(queue, "next");
        var again = await next.ReceiveMessagesAsync(2);
        Assert.Equal(["m1", "m3"], again.Select(m => m.BodyText).Order());
        Assert.All(again, m => Assert.Equal("true", m["redelivered"]));
        await next.ExpectNothingAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Client_individual_nack_redelivers_only_that_message(Transport transport)
    {
        var queue = Unique.Queue();
        var (client, messages) = await ConsumeAsync(transport, queue, "client-individual", 3);
        await using var _ = client;

        await client.NackAsync(messages[1], receipt: false);

        var again = await client.ReceiveMessageAsync();
        Assert.Equal("m2", again.BodyText);
        Assert.Equal("true", again["redelivered"]);
        Assert.NotEqual(messages[1]["ack"], again["ack"]);
        await client.ExpectNothingAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp, "client-individual")]
    [InlineData(Transport.Tcp, "client")]
    [InlineData(Transport.WebSocket, "client-individual")]
    public async Task Prefetch_count_limits_unacknowledged_messages(Transport transport, string ackMode)
    {
        var queue = Unique.Queue();
        await using var producer = await Server.ConnectClientAsync(transport);
        for (var i = 1; i <= 5; i++)
        {
            await producer.SendAsync(queue, $"m{i}", receipt: i == 5);
        }

        await using var consumer = await Server.ConnectClientAsync(transport);
        await consumer.SubscribeAsync(queue, "sub", ackMode, ("prefetch-count", "2"));
        var first = await consumer.ReceiveMessagesAsync(2);
        Assert.Equal(["m1", "m2"], first.Select(m => m.BodyText));
        await consumer.ExpectNothingAsync();
        Assert.Equal(3, Server.GetService<InMemoryBackend>().GetQueueDepth(Unique.QueueName(queue)));

        await consumer.AckAsync(first[0], receipt: false); // m3 would precede a receipt
        Assert.Equal("m3", (await consumer.ReceiveMessageAsync()).BodyText);
        await consumer.ExpectNothingAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Nack_puts_a_queue_message_back_marked_redelivered(Transport transport)
    {
        var queue = Unique.Queue();
        await using var consumer = await Server.ConnectClientAsync(transport);
        await using var other = await Server.ConnectClientAsync(transport);
        await consumer.SubscribeAsync(queue, "sub", "client-individual");
        await consumer.SendAsync(queue, "refused");
        var message = await consumer.ReceiveMessageAsync();
        Assert.Null(message["redelivered"]);

        // A second consumer joins; the NACKed message goes back to the queue and to one of them, flagged.
        await other.SubscribeAsync(queue, "other", "client-individual");
        await consumer.NackAsync(message, receipt: false);

        var again = await other.TryReceiveAsync(TimeSpan.FromMilliseconds(500)) ?? await consumer.ReceiveMessageAsync();
        Assert.Equal(StompCommand.Message, again.Command);
        Assert.Equal("refused", again.BodyText);
        Assert.Equal("true", again["redelivered"]);
    }

    [Theory]
    [InlineData(Transport.Tcp, "unsubscribe")]
    [InlineData(Transport.Tcp, "disconnect")]
    [InlineData(Transport.Tcp, "drop")]
    [InlineData(Transport.WebSocket, "unsubscribe")]
    [InlineData(Transport.WebSocket, "disconnect")]
    [InlineData(Transport.WebSocket, "drop")]
    public async Task Unacknowledged_messages_go_to_another_consumer_when_theirs_leaves(Transport transport, string how)
    {
        var queue = Unique.Queue();
        var (client, messages) = await ConsumeAsync(transport, queue, "client-individual", 2);
        await using var other = await Server.ConnectClientAsync(transport);
        await other.SubscribeAsync(queue, "other", "client-individual");
        await other.ExpectNothingAsync(200); // both are still held by the first consumer

        switch (how)
        {
            case "unsubscribe":
                await client.SendWithReceiptAsync(StompCommand.Unsubscribe, ("id", "sub"));
                break;
            case "disconnect":
                await client.SendWithReceiptAsync(StompCommand.Disconnect);
                await client.ExpectClosedAsync();
                break;
            default:
                await client.DisposeAsync(); // no DISCONNECT: the connection just drops
                break;
        }

        var again = await other.ReceiveMessagesAsync(2);
        Assert.Equal(["m1", "m2"], again.Select(m => m.BodyText).Order());
        Assert.All(again, m => Assert.Equal("true", m["redelivered"]));
        if (how == "unsubscribe")
        {
            await client.ExpectNothingAsync(200);
        }

        await client.DisposeAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Nack_with_requeue_false_drops_the_message(Transport transport)
    {
        var queue = Unique.Queue();
        var (client, messages) = await ConsumeAsync(transport, queue, "client-individual", 2);
        await using var _ = client;
        await using var other = await Server.ConnectClientAsync(transport);
        await other.SubscribeAsync(queue, "other");

        await client.NackAsync(messages[0], receipt: true, ("requeue", "false"));
        await client.ExpectNothingAsync();
        await other.ExpectNothingAsync(100);

        // The other one is still held, and still goes back when its consumer leaves.
        await client.SendWithReceiptAsync(StompCommand.Unsubscribe, ("id", "sub"));
        var again = await other.ReceiveMessageAsync();
        Assert.Equal("m2", again.BodyText);
        await other.ExpectNothingAsync();
        Assert.Equal(0, Server.GetService<InMemoryBackend>().GetQueueDepth(Unique.QueueName(queue)));
    }

    [Fact]
    public async Task Topic_messages_in_client_mode_carry_an_ack_header_and_are_acked_cumulatively()
    {
        var topic = Unique.Topic();
        await using var client = await Server.ConnectClientAsync();
        await client.SubscribeAsync(topic, "sub", "client");
        await client.SendAsync(topic, "a");
        await client.SendAsync(topic, "b");
        var messages = await client.ReceiveMessagesAsync(2);
        Assert.All(messages, m => Assert.False(string.IsNullOrEmpty(m["ack"])));

        await client.AckAsync(messages[1]);

        // The first was covered by the cumulative ACK: acking it again names an unknown ack id.
        await client.SendFrameAsync(StompCommand.Ack, [("id", messages[0]["ack"]!), ("receipt", "late")]);
        var error = await client.ExpectErrorThenCloseAsync("late");
        Assert.Contains("ack", error["message"], StringComparison.OrdinalIgnoreCase);
    }
}
