using Broker.Backends.InMemory;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests;

/// <summary>SEND, SUBSCRIBE, UNSUBSCRIBE; topic and queue semantics; what a MESSAGE carries (checklist 34-38, 53-56).</summary>
public sealed class MessagingTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Every_current_topic_subscriber_gets_each_message(Transport transport)
    {
        var topic = Unique.Topic();
        await using var a = await Server.ConnectClientAsync(transport);
        await using var b = await Server.ConnectClientAsync(transport);
        await using var c = await Server.ConnectClientAsync(transport == Transport.Tcp ? Transport.WebSocket : Transport.Tcp);
        await using var producer = await Server.ConnectClientAsync(transport);
        await a.SubscribeAsync(topic, "a");
        await b.SubscribeAsync(topic, "b");
        await c.SubscribeAsync(topic, "c");

        for (var i = 0; i < 5; i++)
        {
            await producer.SendAsync(topic, $"m{i}");
        }

        foreach (var (client, id) in new[] { (a, "a"), (b, "b"), (c, "c") })
        {
            var messages = await client.ReceiveMessagesAsync(5);
            Assert.Equal(["m0", "m1", "m2", "m3", "m4"], messages.Select(m => m.BodyText));
            Assert.All(messages, m => Assert.Equal(id, m["subscription"]));
            Assert.All(messages, m => Assert.Equal(topic, m["destination"]));
            await client.ExpectNothingAsync(200);
        }
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_topic_message_reaches_only_current_subscribers(Transport transport)
    {
        var topic = Unique.Topic();
        await using var producer = await Server.ConnectClientAsync(transport);
        await using var stays = await Server.ConnectClientAsync(transport);
        await using var leaves = await Server.ConnectClientAsync(transport);
        await stays.SubscribeAsync(topic, "s");
        await leaves.SubscribeAsync(topic, "l");

        await producer.SendAsync(topic, "before", receipt: true);
        Assert.Equal("before", (await leaves.ReceiveMessageAsync()).BodyText);
        await leaves.SendWithReceiptAsync(StompCommand.Unsubscribe, ("id", "l"));
        await producer.SendAsync(topic, "after", receipt: true);

        Assert.Equal("before", (await stays.ReceiveMessageAsync()).BodyText);
        Assert.Equal("after", (await stays.ReceiveMessageAsync()).BodyText);
        await leaves.ExpectNothingAsync();

        // Nobody was subscribed when this was sent: a late subscriber does not get it.
        var empty = Unique.Topic();
        await producer.SendAsync(empty, "into the void", receipt: true);
        await leaves.SubscribeAsync(empty, "late");
        await leaves.ExpectNothingAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Each_queue_message_goes_to_exactly_one_consumer_round_robin(Transport transport)
    {
        var queue = Unique.Queue();
        await using var a = await Server.ConnectClientAsync(transport);
        await using var b = await Server.ConnectClientAsync(transport);
        await using var producer = await Server.ConnectClientAsync(transport);
        await a.SubscribeAsync(queue, "a");
        await b.SubscribeAsync(queue, "b");

        for (var i = 0; i < 10; i++)
        {
            await producer.SendAsync(queue, i.ToString(System.Globalization.CultureInfo.InvariantCulture), receipt: i == 9);
        }

        var toA = (await a.ReceiveMessagesAsync(5)).Select(m => int.Parse(m.BodyText, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        var toB = (await b.ReceiveMessagesAsync(5)).Select(m => int.Parse(m.BodyText, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        await a.ExpectNothingAsync(300);
        await b.ExpectNothingAsync(100);

        Assert.Equal(Enumerable.Range(0, 10), toA.Concat(toB).Order());
        // Round-robin: the consumers alternate, so each gets every other message, in order.
        Assert.True(toA.All(i => i % 2 == toA[0] % 2) && toB.All(i => i % 2 == toB[0] % 2), $"not round-robin: a got {string.Join(",", toA)}, b got {string.Join(",", toB)}");
        Assert.Equal(toA.Order(), toA);
        Assert.Equal(toB.Order(), toB);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_queue_keeps_messages_until_a_consumer_subscribes(Transport transport)
    {
        var queue = Unique.Queue();
        await using (var producer = await Server.ConnectClientAsync(transport))
        {
            await producer.SendAsync(queue, "one");
            await producer.SendAsync(queue, "two");
            await producer.SendAsync(queue, "three", receipt: true);
        }

        Assert.Equal(3, Server.GetService<InMemoryBackend>().GetQueueDepth(Unique.QueueName(queue)));
        await using var consumer = await Server.ConnectClientAsync(transport);
        await consumer.SubscribeAsync(queue, "late");

        var messages = await consumer.ReceiveMessagesAsync(3);
        Assert.Equal(["one", "two", "three"], messages.Select(m => m.BodyText));
        Assert.Equal(0, Server.GetService<InMemoryBackend>().GetQueueDepth(Unique.QueueName(queue)));
    }

    [Theory]
    [InlineData(Transport.Tcp, Transport.Tcp)]
    [InlineData(Transport.Tcp, Transport.WebSocket)]
    [InlineData(Transport.WebSocket, Transport.Tcp)]
    [InlineData(Transport.WebSocket, Transport.WebSocket)]
    public async Task A_message_carries_the_send_headers_and_its_own(Transport producerTransport, Transport consumerTransport)
    {
        var queue = Unique.Queue();
        await using var producer = await Server.ConnectClientAsync(producerTransport);
        await using var consumer = await Server.ConnectClientAsync(consumerTransport);
        await consumer.SubscribeAsync(queue, "sub-1");

        await producer.SendAsync(
            queue,
            "héllo",
            receipt: true,
            ("content-type", "text/plain;charset=utf-8"),
            ("x-colon", "a:b"),
            ("x-newline", "line\nbreak"),
            ("x-cr", "carriage\rreturn"),
            ("x-backslash", "back\\slash"),
            ("name:with\\escapes", "value"),
            ("x-empty", ""),
            ("x-spaces", "  padded  "));

        var message = await consumer.ReceiveMessageAsync();
        Assert.Equal("héllo", message.BodyText);
        Assert.Equal(queue, message["destination"]);
        Assert.False(string.IsNullOrEmpty(message["message-id"]));
        Assert.Equal("sub-1", message["subscription"]);
        Assert.Equal("6", message["content-length"]); // UTF-8 bytes
        Assert.Equal("text/plain;charset=utf-8", message["content-type"]);
        Assert.Equal("a:b", message["x-colon"]);
        Assert.Equal("line\nbreak", message["x-newline"]);
        Assert.Equal("carriage\rreturn", message["x-cr"]);
        Assert.Equal("back\\slash", message["x-backslash"]);
        Assert.Equal("value", message["name:with\\escapes"]);
        Assert.Equal("", message["x-empty"]);
        Assert.Equal("  padded  ", message["x-spaces"]);
        Assert.Null(message["ack"]); // auto mode
        Assert.Null(message["receipt"]); // the SEND's receipt is not passed on
        Assert.Null(message["receipt-id"]);
        Assert.Null(message["redelivered"]);
    }

    [Fact]
    public async Task A_message_without_content_type_has_none_and_every_message_id_is_unique()
    {
        var topic = Unique.Topic();
        await using var producer = await Server.ConnectClientAsync(Transport.Tcp);
        await using var a = await Server.ConnectClientAsync(Transport.Tcp);
        await using var b = await Server.ConnectClientAsync(Transport.WebSocket);
        await a.SubscribeAsync(topic, "x");
        await b.SubscribeAsync(topic, "x");

        for (var i = 0; i < 5; i++)
        {
            await producer.SendAsync(topic, "m");
        }

        var messages = (await a.ReceiveMessagesAsync(5)).Concat(await b.ReceiveMessagesAsync(5)).ToList();
        Assert.All(messages, m => Assert.Null(m["content-type"]));
        Assert.Equal(10, messages.Select(m => m["message-id"]).Distinct().Count());
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Unsubscribe_from_a_queue_stops_deliveries_and_leaves_messages_for_others(Transport transport)
    {
        var queue = Unique.Queue();
        await using var client = await Server.ConnectClientAsync(transport);
        await client.SubscribeAsync(queue, "s");
        await client.SendAsync(queue, "first");
        Assert.Equal("first", (await client.ReceiveMessageAsync()).BodyText);

        await client.SendWithReceiptAsync(StompCommand.Unsubscribe, ("id", "s"));
        await client.SendAsync(queue, "second", receipt: true);
        await client.ExpectNothingAsync();

        await using var other = await Server.ConnectClientAsync(transport);
        await other.SubscribeAsync(queue, "o");
        Assert.Equal("second", (await other.ReceiveMessageAsync()).BodyText);

        // The id is free again after UNSUBSCRIBE.
        await client.SubscribeAsync(queue, "s");
        await other.SendWithReceiptAsync(StompCommand.Unsubscribe, ("id", "o"));
        await other.SendAsync(queue, "third");
        Assert.Equal("third", (await client.ReceiveMessageAsync()).BodyText);
    }

    [Fact]
    public async Task One_connection_may_subscribe_to_several_destinations()
    {
        var queue = Unique.Queue();
        var topic = Unique.Topic();
        await using var client = await Server.ConnectClientAsync();
        await client.SubscribeAsync(queue, "q");
        await client.SubscribeAsync(topic, "t");

        await client.SendAsync(topic, "to topic");
        await client.SendAsync(queue, "to queue");

        var first = await client.ReceiveMessageAsync();
        var second = await client.ReceiveMessageAsync();
        Assert.Equal(("t", "to topic"), (first["subscription"], first.BodyText));
        Assert.Equal(("q", "to queue"), (second["subscription"], second.BodyText));
    }
}
