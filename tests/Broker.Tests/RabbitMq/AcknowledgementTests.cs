using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.RabbitMq;

/// <summary>
/// STOMP acks as AMQP acks: client and client-individual modes, NACK with and without requeue, prefetch-count as the
/// consumer's prefetch, the redelivered flag; durable subscriptions; publisher confirms behind RECEIPT.
/// </summary>
[Collection(RabbitMqTestGroup.Name)]
public sealed class AcknowledgementTests(RabbitMqServer rabbit)
{
    [Fact]
    public async Task A_nack_requeues_and_the_message_comes_back_redelivered_then_an_ack_removes_it()
    {
        await using var node = await RabbitNodes.StartAsync(rabbit);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var queue = Unique.Queue("nack");
        await using var client = await node.ConnectClientAsync();
        await using var producer = await node.ConnectClientAsync();
        await client.SubscribeAsync(queue, "s", "client-individual");
        await producer.SendAsync(queue, "again", receipt: true);

        var first = await client.ReceiveMessageAsync();
        Assert.Null(first["redelivered"]);
        await client.NackAsync(first);

        var second = await client.ReceiveMessageAsync();
        Assert.Equal("again", second.BodyText);
        Assert.Equal("true", second["redelivered"]);
        Assert.NotEqual(first["ack"], second["ack"]);
        await client.AckAsync(second);
        await client.ExpectNothingAsync();

        await client.SendWithReceiptAsync(StompCommand.Unsubscribe, ("id", "s"));
        Assert.Equal(0u, await amqp.ReadyCountAsync(Unique.QueueName(queue)));
    }

    [Fact]
    public async Task A_nack_without_requeue_drops_the_message()
    {
        await using var node = await RabbitNodes.StartAsync(rabbit);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var queue = Unique.Queue("drop");
        await using var client = await node.ConnectClientAsync();
        await using var producer = await node.ConnectClientAsync();
        await client.SubscribeAsync(queue, "s", "client-individual");
        await producer.SendAsync(queue, "unwanted", receipt: true);
        await producer.SendAsync(queue, "wanted", receipt: true);

        var unwanted = await client.ReceiveMessageAsync();
        var wanted = await client.ReceiveMessageAsync();
        await client.NackAsync(unwanted, receipt: true, ("requeue", "false"));
        await client.AckAsync(wanted);
        await client.ExpectNothingAsync();

        // Released by closing the consumer, an unsettled message would be back in the queue: this one is gone.
        await client.SendWithReceiptAsync(StompCommand.Unsubscribe, ("id", "s"));
        Assert.Equal(0u, await amqp.ReadyCountAsync(Unique.QueueName(queue)));
        await using var next = await node.ConnectClientAsync();
        await next.SubscribeAsync(queue, "next");
        await next.ExpectNothingAsync();
    }

    [Fact]
    public async Task Prefetch_count_caps_the_messages_in_flight_at_rabbitmq()
    {
        await using var node = await RabbitNodes.StartAsync(rabbit);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var queue = Unique.Queue("prefetch");
        await using var producer = await node.ConnectClientAsync();
        for (var i = 1; i <= 5; i++)
        {
            await producer.SendAsync(queue, $"m{i}", receipt: true);
        }

        await using var client = await node.ConnectClientAsync();
        await client.SubscribeAsync(queue, "s", "client-individual", ("prefetch-count", "2"));
        var m1 = await client.ReceiveMessageAsync();
        var m2 = await client.ReceiveMessageAsync();
        await client.ExpectNothingAsync();

        // RabbitMQ itself holds the other three back: the consumer's prefetch is 2.
        Assert.Equal(3u, await amqp.ReadyCountAsync(Unique.QueueName(queue)));

        // Acks without receipts from here: a RECEIPT and the next MESSAGE may come in either order.
        await client.AckAsync(m1, receipt: false);
        var m3 = await client.ReceiveMessageAsync();
        Assert.Equal("m3", m3.BodyText);
        await client.ExpectNothingAsync(200);
        await Eventually.UntilAsync(async () => await amqp.ReadyCountAsync(Unique.QueueName(queue)) == 2u, TimeSpan.FromSeconds(5), "two messages left ready");

        await client.AckAsync(m2, receipt: false);
        await client.AckAsync(m3, receipt: false);
        var rest = await client.ReceiveMessagesAsync(2);
        Assert.Equal(["m4", "m5"], rest.Select(m => m.BodyText));
    }

    [Fact]
    public async Task Client_mode_acks_cumulatively_and_unacked_messages_return_redelivered_to_the_next_consumer()
    {
        await using var nodes = await RabbitNodes.StartGroupAsync(rabbit, 2);
        var queue = Unique.Queue("cumulative");
        await using var producer = await nodes[1].ConnectClientAsync();
        await using (var client = await nodes[0].ConnectClientAsync())
        {
            await client.SubscribeAsync(queue, "s", "client");
            for (var i = 1; i <= 4; i++)
            {
                await producer.SendAsync(queue, $"m{i}", receipt: true);
            }

            var messages = await client.ReceiveMessagesAsync(4);
            await client.AckAsync(messages[1]); // m1 and m2
            await client.SendWithReceiptAsync(StompCommand.Disconnect);
        }

        await using var next = await nodes[1].ConnectClientAsync();
        await next.SubscribeAsync(queue, "next", "client-individual");
        var again = await next.ReceiveMessagesAsync(2);
        Assert.Equal(["m3", "m4"], again.Select(m => m.BodyText));
        Assert.All(again, m => Assert.Equal("true", m["redelivered"]));
        await next.ExpectNothingAsync();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_durable_topic_subscription_keeps_messages_while_its_subscriber_is_away(bool namedQueue)
    {
        await using var nodes = await RabbitNodes.StartGroupAsync(rabbit, 2);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var topic = Unique.Topic("durable");
        var id = Unique.Id("sub");
        var queueName = namedQueue ? Unique.Id("durable-q") : "stomp.durable." + id;
        (string, string)[] durable = namedQueue
            ? [("durable", "true"), ("auto-delete", "false"), ("x-queue-name", queueName)]
            : [("durable", "true"), ("auto-delete", "false")];
        try
        {
            await using var sender = await nodes[1].ConnectClientAsync();
            await using (var subscriber = await nodes[0].ConnectClientAsync())
            {
                await subscriber.SubscribeAsync(topic, id, "client-individual", durable);
                await sender.SendAsync(topic, "while here", receipt: true);
                var here = await subscriber.ReceiveMessageAsync();
                Assert.Equal("while here", here.BodyText);
                Assert.Equal(topic, here["destination"]);
                await subscriber.AckAsync(here);
                await subscriber.SendWithReceiptAsync(StompCommand.Disconnect);
            }

            await amqp.WaitForNoConsumersAsync(queueName);
            await sender.SendAsync(topic, "while away 1", receipt: true, ("persistent", "true"));
            await sender.SendAsync(topic, "while away 2", receipt: true, ("persistent", "true"));
            Assert.Equal(2u, await amqp.ReadyCountAsync(queueName));

            await using var back = await nodes[1].ConnectClientAsync();
            await back.SubscribeAsync(topic, id, "client-individual", durable);
            var kept = await back.ReceiveMessagesAsync(2);
            Assert.Equal(["while away 1", "while away 2"], kept.Select(m => m.BodyText));
            Assert.All(kept, m => Assert.Equal(id, m["subscription"]));
            await back.AckAsync(kept[0]);
            await back.AckAsync(kept[1]);
            await back.ExpectNothingAsync();
        }
        finally
        {
            await amqp.CleanUpAsync(queues: [queueName]);
        }
    }

    [Fact]
    public async Task A_durable_subscriber_coming_back_to_a_backlog_larger_than_its_outbound_buffer_gets_every_message()
    {
        // The backlog arrives from RabbitMQ in one burst; what finds the connection's buffer full waits in the backend
        // until the writer has drained it, and must then be offered again.
        await using var node = await RabbitNodes.StartAsync(rabbit, "Broker:Outbound:MaxBufferedBytes=4096");
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var topic = Unique.Topic("durable-burst");
        var queueName = Unique.Id("durable-burst");
        (string, string)[] durable = [("durable", "true"), ("auto-delete", "false"), ("x-queue-name", queueName)];
        try
        {
            await using (var away = await node.ConnectClientAsync())
            {
                await away.SubscribeAsync(topic, "s", "auto", durable);
                await away.SendWithReceiptAsync(StompCommand.Disconnect);
            }

            await amqp.WaitForNoConsumersAsync(queueName);
            await using var sender = await node.ConnectClientAsync();

            // Each larger than the whole buffer (one at a time fits), and enough of them to keep the writer flushing.
            var body = new string('x', 256 * 1024);
            const int Count = 24;
            for (var i = 0; i < Count; i++)
            {
                await sender.SendAsync(topic, $"{i:D3}{body}", receipt: i == Count - 1);
            }

            Assert.Equal((uint)Count, await amqp.ReadyCountAsync(queueName));
            await using var back = await node.ConnectClientAsync();
            await back.SubscribeAsync(topic, "s", "auto", durable);
            var messages = await back.ReceiveMessagesAsync(Count);
            Assert.Equal(Enumerable.Range(0, Count).Select(i => $"{i:D3}"), messages.Select(m => m.BodyText[..3]));
        }
        finally
        {
            await amqp.CleanUpAsync(queues: [queueName]);
        }
    }

    [Fact]
    public async Task A_committed_transaction_is_in_the_queue_when_the_commit_receipt_arrives_and_an_aborted_one_never_is()
    {
        await using var node = await RabbitNodes.StartAsync(rabbit);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var queue = Unique.Queue("tx");
        await using var client = await node.ConnectClientAsync();

        await client.SendWithReceiptAsync(StompCommand.Begin, ("transaction", "tx1"));
        await client.SendAsync(queue, "t1", receipt: true, ("transaction", "tx1"));
        await client.SendAsync(queue, "t2", receipt: true, ("transaction", "tx1"));
        Assert.Equal(0u, await amqp.ReadyCountAsync(Unique.QueueName(queue)) ?? 0u);
        await client.SendWithReceiptAsync(StompCommand.Commit, ("transaction", "tx1"));
        Assert.Equal(2u, await amqp.ReadyCountAsync(Unique.QueueName(queue)));

        await client.SendWithReceiptAsync(StompCommand.Begin, ("transaction", "tx2"));
        await client.SendAsync(queue, "t3", receipt: true, ("transaction", "tx2"));
        await client.SendWithReceiptAsync(StompCommand.Abort, ("transaction", "tx2"));
        Assert.Equal(2u, await amqp.ReadyCountAsync(Unique.QueueName(queue)));
        await amqp.CleanUpAsync(queues: [Unique.QueueName(queue)]);
    }

    [Fact]
    public async Task A_receipted_send_is_in_the_queue_when_the_receipt_arrives()
    {
        await using var node = await RabbitNodes.StartAsync(rabbit);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var queue = Unique.Queue("confirmed");
        await using var client = await node.ConnectClientAsync();
        for (var i = 1; i <= 10; i++)
        {
            await client.SendAsync(queue, $"m{i}", receipt: true, ("persistent", (i % 2 == 0).ToString().ToLowerInvariant()));

            // Checked once, right away: RabbitMQ confirmed the message before the broker sent the RECEIPT.
            Assert.Equal((uint)i, await amqp.ReadyCountAsync(Unique.QueueName(queue)));
        }

        await amqp.CleanUpAsync(queues: [Unique.QueueName(queue)]);
    }
}
