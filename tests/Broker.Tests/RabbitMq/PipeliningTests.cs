using System.Text;
using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.RabbitMq;

/// <summary>
/// Publishes pipelined per session and acks coalesced per channel, against a real RabbitMQ: a producer that never
/// waits keeps its order and loses nothing, a RECEIPT still means every earlier message is confirmed, a message
/// RabbitMQ refuses (basic.nack) is an ERROR and never a RECEIPT, and acks settled out of order or mixed with nacks
/// reach RabbitMQ without stalling its prefetch or closing the consumer's channel.
/// </summary>
[Collection(RabbitMqTestGroup.Name)]
public sealed class PipeliningTests(RabbitMqServer rabbit)
{
    [Theory]
    [InlineData("queue")]
    [InlineData("topic")]
    public async Task Messages_sent_without_waiting_arrive_in_order_once_each_after_the_receipt_of_the_last(string kind)
    {
        const int Count = 2_001;
        await using var nodes = await RabbitNodes.StartGroupAsync(rabbit, 2);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var destination = kind == "queue" ? Unique.Queue("pipelined") : Unique.Topic("pipelined");

        // A queue has one consumer, on the other node; a topic one subscriber on each node.
        await using var remote = await nodes[1].ConnectClientAsync();
        await remote.SubscribeAsync(destination, "remote");
        await using var local = await nodes[0].ConnectClientAsync();
        if (kind == "topic")
        {
            await local.SubscribeAsync(destination, "local");
        }

        StompTestClient[] consumers = kind == "topic" ? [remote, local] : [remote];
        var received = consumers.Select(consumer => consumer.ReceiveMessagesAsync(Count)).ToArray();

        await using var producer = await nodes[0].ConnectClientAsync();
        await SendManyAsync(producer, destination, Count - 1);
        await producer.SendAsync(destination, Body(Count - 1), receipt: true);

        foreach (var (consumer, messages) in consumers.Zip(await Task.WhenAll(received)))
        {
            Assert.Equal(Enumerable.Range(0, Count).Select(Body), messages.Select(m => m.BodyText));
            Assert.All(messages, m => Assert.Equal(destination, m["destination"]));
            await consumer.ExpectNothingAsync(300);
        }

        if (kind == "queue")
        {
            await amqp.CleanUpAsync(queues: [Unique.QueueName(destination)]);
        }
    }

    [Fact]
    public async Task Producers_pipelining_to_one_queue_side_by_side_each_keep_their_order()
    {
        // Each producer's messages to a destination go over one of the node's publishing channels; different producers
        // share them out. Were messages spread one by one, RabbitMQ (a process per channel) would mix up a producer's.
        const int Producers = 4, PerProducer = 500, Offset = 10_000;
        await using var node = await RabbitNodes.StartAsync(rabbit);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var queue = Unique.Queue("side-by-side");
        await using var consumer = await node.ConnectClientAsync();
        await consumer.SubscribeAsync(queue, "all");
        var received = consumer.ReceiveMessagesAsync(Producers * (PerProducer + 1));

        var producers = await Task.WhenAll(Enumerable.Range(0, Producers).Select(_ => node.ConnectClientAsync()));
        try
        {
            await Task.WhenAll(producers.Select(async (producer, p) =>
            {
                await SendManyAsync(producer, queue, PerProducer, first: p * Offset);
                await producer.SendAsync(queue, Body((p * Offset) + PerProducer), receipt: true);
            }));

            var bodies = (await received).Select(m => int.Parse(m.BodyText[1..], System.Globalization.CultureInfo.InvariantCulture)).ToList();
            for (var p = 0; p < Producers; p++)
            {
                var own = bodies.Where(b => b / Offset == p).ToList();
                Assert.Equal(Enumerable.Range(p * Offset, PerProducer + 1), own);
            }
        }
        finally
        {
            foreach (var producer in producers)
            {
                await producer.DisposeAsync();
            }

            await amqp.CleanUpAsync(queues: [Unique.QueueName(queue)]);
        }
    }

    [Fact]
    public async Task A_message_rabbitmq_refuses_is_an_error_and_never_a_receipt_and_other_connections_go_on()
    {
        await using var node = await RabbitNodes.StartAsync(rabbit);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var queue = Unique.Id("full");

        // Holds one message and answers every further publish with basic.nack.
        await amqp.Channel.QueueDeclareAsync(
            queue,
            durable: false,
            exclusive: false,
            autoDelete: false,
            arguments: new Dictionary<string, object?> { ["x-max-length"] = 1, ["x-overflow"] = "reject-publish" });
        try
        {
            await using (var client = await node.ConnectClientAsync())
            {
                await client.SendAsync($"/amq/queue/{queue}", "fits", receipt: true);
                Assert.Equal(1u, await amqp.ReadyCountAsync(queue));

                var receipt = Unique.Id("refused");
                await client.SendFrameAsync(StompCommand.Send, [("destination", $"/amq/queue/{queue}"), ("receipt", receipt)], Encoding.UTF8.GetBytes("too many"));
                var error = await client.ExpectErrorThenCloseAsync(receipt);
                Assert.Contains("refused", error["message"], StringComparison.Ordinal);
            }

            // Pipelined, without receipts: a refusal is not lost among the publishes that were not waited for, and a
            // later DISCONNECT's RECEIPT does not claim them.
            await using (var client = await node.ConnectClientAsync())
            {
                await SendManyAsync(client, $"/amq/queue/{queue}", 5);
                await client.SendFrameAsync(StompCommand.Disconnect, [("receipt", Unique.Id("bye"))]);
                var frames = await client.ExpectClosedAsync();
                Assert.True(frames.Count == 1 && frames[0].Command == StompCommand.Error, $"expected one ERROR, got: {string.Join(" | ", frames)}");
                Assert.Contains("refused", frames[0]["message"], StringComparison.Ordinal);
            }

            Assert.Equal(1u, await amqp.ReadyCountAsync(queue));
            Assert.Equal("fits", (await amqp.GetAsync(queue)).BodyText);
            await node.AssertStillServesOthersAsync();
        }
        finally
        {
            await amqp.CleanUpAsync(queues: [queue]);
        }
    }

    [Fact]
    public async Task A_disconnect_receipt_after_unreceipted_sends_comes_only_once_rabbitmq_holds_them_all()
    {
        const int Count = 500;
        await using var node = await RabbitNodes.StartAsync(rabbit);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var queue = Unique.Queue("confirmed-all");
        var name = Unique.QueueName(queue);
        await using var client = await node.ConnectClientAsync();

        // 32 KiB each, 16 MiB in all, persistent: RabbitMQ takes a while to take them all, so a RECEIPT sent once the
        // last one is handed over (rather than confirmed) would come while some are not in the queue yet.
        await SendManyAsync(client, queue, Count, padTo: 32 * 1024, headers: [("persistent", "true")]);
        await client.SendWithReceiptAsync(StompCommand.Disconnect);

        // Checked once, right away, with no consumer: every message was confirmed before the RECEIPT was sent.
        Assert.Equal((uint)Count, await amqp.ReadyCountAsync(name));
        Assert.StartsWith(Body(0), (await amqp.GetAsync(name)).BodyText, StringComparison.Ordinal);
        await amqp.CleanUpAsync(queues: [name]);
    }

    [Fact]
    public async Task Out_of_order_individual_acks_keep_a_small_prefetch_window_moving_and_none_comes_back()
    {
        const int Count = 50;
        await using var node = await RabbitNodes.StartAsync(rabbit);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var queue = Unique.Queue("out-of-order");
        var name = Unique.QueueName(queue);
        await using (var producer = await node.ConnectClientAsync())
        {
            await SendManyAsync(producer, queue, Count - 1);
            await producer.SendAsync(queue, Body(Count - 1), receipt: true);
        }

        Assert.Equal((uint)Count, await amqp.ReadyCountAsync(name));
        await using (var consumer = await node.ConnectClientAsync())
        {
            await consumer.SubscribeAsync(queue, "s", "client-individual", ("prefetch-count", "5"));

            // The first delivery stays unacknowledged throughout: only acks sent on their own, not a multiple ack
            // (which cannot pass it), free RabbitMQ's window of 5 for the rest.
            var held = await consumer.ReceiveMessageAsync();
            List<string> bodies = [held.BodyText];
            while (bodies.Count < Count)
            {
                var message = await consumer.ReceiveMessageAsync();
                bodies.Add(message.BodyText);
                await consumer.AckAsync(message, receipt: false);
            }

            Assert.Equal(Enumerable.Range(0, Count).Select(Body), bodies);
            await consumer.ExpectNothingAsync(200);
            Assert.Equal(0u, await amqp.ReadyCountAsync(name));

            await consumer.AckAsync(held);
            await consumer.SendWithReceiptAsync(StompCommand.Disconnect);
        }

        // A message still unacknowledged when the consumer left would be ready again.
        await amqp.WaitForNoConsumersAsync(name);
        Assert.Equal(0u, await amqp.ReadyCountAsync(name));
        await using var again = await node.ConnectClientAsync();
        await again.SubscribeAsync(queue, "again", "client-individual");
        await again.ExpectNothingAsync();
        await amqp.CleanUpAsync(queues: [name]);
    }

    [Fact]
    public async Task A_nack_among_acks_requeues_its_message_and_the_subscription_keeps_receiving()
    {
        const int PerRound = 10;
        await using var node = await RabbitNodes.StartAsync(rabbit);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var queue = Unique.Queue("nack-among-acks");
        var name = Unique.QueueName(queue);
        await using var producer = await node.ConnectClientAsync();
        await using (var consumer = await node.ConnectClientAsync())
        {
            await consumer.SubscribeAsync(queue, "s", "client-individual", ("prefetch-count", "20"));

            // Three orders of settling ten deliveries, each naming the one NACKed. A multiple ack may pass a nacked
            // delivery only once the nack is written, and must itself name a delivery RabbitMQ still holds
            // unacknowledged: otherwise RabbitMQ closes the channel (PRECONDITION_FAILED, unknown delivery tag), its
            // unacknowledged messages come back, and the subscription receives nothing more.
            Func<StompTestClient, List<ReceivedFrame>, Task<(int Nacked, List<ReceivedFrame> Early)>>[] orders =
            [
                // The nack first, the acks right behind it.
                async (client, m) =>
                {
                    await client.NackAsync(m[0], receipt: false);
                    foreach (var message in m.Skip(1))
                    {
                        await client.AckAsync(message, receipt: false);
                    }

                    return (0, []);
                },

                // Acks out of order around two held deliveries; the first is NACKed, then the ack of the second
                // closes the gap over the nack and the acks already sent on their own.
                async (client, m) =>
                {
                    foreach (var message in m.Skip(2))
                    {
                        await client.AckAsync(message, receipt: false);
                    }

                    var early = await SettleWithReceiptAsync(client, StompCommand.Nack, m[0]);
                    await client.AckAsync(m[1], receipt: false);
                    return (0, early);
                },

                // The last delivery is NACKed while the first is held; the ack of the first closes the gap up to it.
                async (client, m) =>
                {
                    foreach (var message in m.Skip(1).SkipLast(1))
                    {
                        await client.AckAsync(message, receipt: false);
                    }

                    var early = await SettleWithReceiptAsync(client, StompCommand.Nack, m[^1]);
                    await client.AckAsync(m[0], receipt: false);
                    return (PerRound - 1, early);
                },
            ];

            var first = 0;
            foreach (var settle in orders)
            {
                await SendManyAsync(producer, queue, PerRound - 1, first);
                await producer.SendAsync(queue, Body(first + PerRound - 1), receipt: true);
                var messages = await consumer.ReceiveMessagesAsync(PerRound);
                Assert.Equal(Enumerable.Range(first, PerRound).Select(Body), messages.Select(m => m.BodyText));
                var (nacked, early) = await settle(consumer, messages);

                // README: a NACKed message goes back to its queue and is redelivered with redelivered:true; it alone.
                var back = early.Count > 0 ? early[0] : await consumer.ReceiveMessageAsync();
                Assert.True(early.Count <= 1, $"expected one redelivery, got: {string.Join(" | ", early)}");
                Assert.Equal(Body(first + nacked), back.BodyText);
                Assert.Equal("true", back["redelivered"]);
                await consumer.AckAsync(back);
                await consumer.ExpectNothingAsync(200);
                first += PerRound;
            }

            // The channel is still open: new messages still come, each once.
            await SendManyAsync(producer, queue, PerRound - 1, first);
            await producer.SendAsync(queue, Body(first + PerRound - 1), receipt: true);
            var more = await consumer.ReceiveMessagesAsync(PerRound);
            Assert.Equal(Enumerable.Range(first, PerRound).Select(Body), more.Select(m => m.BodyText));
            Assert.All(more, m => Assert.Null(m["redelivered"]));
            foreach (var message in more)
            {
                await consumer.AckAsync(message, receipt: false);
            }

            await consumer.ExpectNothingAsync(200);
            await consumer.SendWithReceiptAsync(StompCommand.Disconnect);
        }

        await amqp.WaitForNoConsumersAsync(name);
        Assert.Equal(0u, await amqp.ReadyCountAsync(name));
        await amqp.CleanUpAsync(queues: [name]);
    }

    [Fact]
    public async Task An_auto_ack_subscriber_gets_thousands_of_messages_and_rabbitmq_has_every_ack()
    {
        const int Count = 5_000;
        await using var node = await RabbitNodes.StartAsync(rabbit);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var queue = Unique.Queue("auto-ack");
        var name = Unique.QueueName(queue);
        await using (var consumer = await node.ConnectClientAsync())
        {
            // The default prefetch (256) is far below the count: delivery would stop there without acks.
            await consumer.SubscribeAsync(queue, "s");
            var received = consumer.ReceiveMessagesAsync(Count);
            await using (var producer = await node.ConnectClientAsync())
            {
                await SendManyAsync(producer, queue, Count - 1);
                await producer.SendAsync(queue, Body(Count - 1), receipt: true);
            }

            Assert.Equal(Enumerable.Range(0, Count).Select(Body), (await received).Select(m => m.BodyText));
            await consumer.ExpectNothingAsync(200);
            Assert.Equal(0u, await amqp.ReadyCountAsync(name));
            await consumer.SendWithReceiptAsync(StompCommand.Disconnect);
        }

        // Closing the consumer's channel would have made any unacknowledged message ready again: none was.
        await amqp.WaitForNoConsumersAsync(name);
        Assert.Equal(0u, await amqp.ReadyCountAsync(name));
        await amqp.CleanUpAsync(queues: [name]);
    }

    private static string Body(int index) => $"m{index:D5}";

    /// <summary>
    /// ACK or NACK with a receipt, so the settlement is done before the test goes on; MESSAGEs that arrive before
    /// the RECEIPT (a NACKed message coming back) are returned.
    /// </summary>
    private static async Task<List<ReceivedFrame>> SettleWithReceiptAsync(StompTestClient client, StompCommand command, ReceivedFrame message)
    {
        var receipt = Unique.Id("settled");
        await client.SendFrameAsync(command, [("id", message["ack"]!), ("receipt", receipt)]);
        List<ReceivedFrame> early = [];
        while (await client.ReceiveAsync() is var frame && !(frame.Command == StompCommand.Receipt && frame["receipt-id"] == receipt))
        {
            Assert.True(frame.Command == StompCommand.Message, $"expected RECEIPT {receipt}, got {frame}");
            early.Add(frame);
        }

        return early;
    }

    /// <summary>
    /// SENDs without receipts, bodies <see cref="Body"/>(first) onwards (padded with 'x' to <paramref name="padTo"/>
    /// bytes), written in large chunks so the broker reads them back to back as a pipelining client sends them.
    /// </summary>
    private static async Task SendManyAsync(StompTestClient client, string destination, int count, int first = 0, int padTo = 0, params (string Name, string Value)[] headers)
    {
        using var chunk = new MemoryStream();
        for (var i = first; i < first + count; i++)
        {
            chunk.Write(Frames.Send(destination, Encoding.UTF8.GetBytes(Body(i).PadRight(padTo, 'x')), headers));
            if (chunk.Length >= 64 * 1024)
            {
                await client.SendRawAsync(chunk.ToArray());
                chunk.SetLength(0);
            }
        }

        if (chunk.Length > 0)
        {
            await client.SendRawAsync(chunk.ToArray());
        }
    }
}
