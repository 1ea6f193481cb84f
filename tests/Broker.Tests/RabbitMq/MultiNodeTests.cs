using Broker.Tests.Infrastructure;

namespace Broker.Tests.RabbitMq;

/// <summary>Several broker nodes in this process, on different ports, sharing one RabbitMQ.</summary>
[Collection(RabbitMqTestGroup.Name)]
public sealed class MultiNodeTests(RabbitMqServer rabbit)
{
    [Fact]
    public async Task A_topic_message_sent_on_any_of_three_nodes_reaches_every_subscriber_on_every_node_exactly_once()
    {
        await using var nodes = await RabbitNodes.StartGroupAsync(rabbit, 3);
        var topic = Unique.Topic("fanout");
        var subscribers = new List<(string Id, StompTestClient Client)>();
        try
        {
            // Two subscribers per node (one per transport): they share their node's queue, and each still gets every message.
            for (var n = 0; n < 3; n++)
            {
                foreach (var transport in new[] { Transport.Tcp, Transport.WebSocket })
                {
                    var client = await nodes[n].ConnectClientAsync(transport);
                    var id = $"node{n}-{transport}";
                    subscribers.Add((id, client));
                    await client.SubscribeAsync(topic, id);
                }
            }

            const int PerNode = 10;
            await Task.WhenAll(nodes.Nodes.Select(async (node, n) =>
            {
                await using var sender = await node.ConnectClientAsync();
                for (var i = 0; i < PerNode; i++)
                {
                    await sender.SendAsync(topic, $"n{n}-{i}", receipt: true);
                }
            }));

            var expected = Enumerable.Range(0, 3).SelectMany(n => Enumerable.Range(0, PerNode).Select(i => $"n{n}-{i}")).Order().ToList();
            await Task.WhenAll(subscribers.Select(async s =>
            {
                var messages = await s.Client.ReceiveMessagesAsync(expected.Count);
                var bodies = messages.Select(m => m.BodyText).ToList();
                Assert.Equal(expected, bodies.Order().ToList()); // each message once: none missing, none twice
                Assert.All(messages, m =>
                {
                    Assert.Equal(topic, m["destination"]);
                    Assert.Equal(s.Id, m["subscription"]);
                });

                // Each sender's messages arrive in the order sent.
                for (var n = 0; n < 3; n++)
                {
                    var prefix = $"n{n}-";
                    Assert.Equal(Enumerable.Range(0, PerNode).Select(i => prefix + i), bodies.Where(b => b.StartsWith(prefix, StringComparison.Ordinal)));
                }

                await s.Client.ExpectNothingAsync(500); // and no late duplicate
            }));
        }
        finally
        {
            foreach (var (_, client) in subscribers)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_node_without_subscribers_still_reaches_subscribers_elsewhere_and_an_unsubscribed_node_gets_nothing()
    {
        await using var nodes = await RabbitNodes.StartGroupAsync(rabbit, 2);
        var topic = Unique.Topic("leave");
        await using var stays = await nodes[0].ConnectClientAsync();
        await using var leaves = await nodes[1].ConnectClientAsync();
        await using var sender = await nodes[1].ConnectClientAsync();
        await stays.SubscribeAsync(topic, "stays");
        await leaves.SubscribeAsync(topic, "leaves");

        await sender.SendAsync(topic, "both", receipt: true);
        Assert.Equal("both", (await stays.ReceiveMessageAsync()).BodyText);
        Assert.Equal("both", (await leaves.ReceiveMessageAsync()).BodyText);

        await leaves.SendWithReceiptAsync(Broker.Stomp.StompCommand.Unsubscribe, ("id", "leaves"));
        await sender.SendAsync(topic, "one", receipt: true);
        Assert.Equal("one", (await stays.ReceiveMessageAsync()).BodyText);
        await leaves.ExpectNothingAsync();
        await stays.ExpectNothingAsync(100);
    }

    [Fact]
    public async Task Consumers_of_a_queue_on_different_nodes_compete_each_message_going_to_exactly_one()
    {
        await using var nodes = await RabbitNodes.StartGroupAsync(rabbit, 3);
        var queue = Unique.Queue("compete");
        await using var first = await nodes[0].ConnectClientAsync();
        await using var second = await nodes[1].ConnectClientAsync(Transport.WebSocket);
        await using var sender = await nodes[2].ConnectClientAsync();
        await first.SubscribeAsync(queue, "first");
        await second.SubscribeAsync(queue, "second");

        const int Count = 40;
        for (var i = 0; i < Count; i++)
        {
            await sender.SendAsync(queue, $"m{i}", receipt: true);
        }

        var received = await RabbitStompExtensions.CollectAsync([first, second], Count, TimeSpan.FromSeconds(15));
        var a = received[0].Select(m => m.BodyText).ToList();
        var b = received[1].Select(m => m.BodyText).ToList();
        Assert.Empty(a.Intersect(b));
        Assert.Equal(Enumerable.Range(0, Count).Select(i => $"m{i}").Order(), a.Concat(b).Order());
        Assert.NotEmpty(a);
        Assert.NotEmpty(b);
        Assert.All(received[0], m => Assert.Equal(queue, m["destination"]));

        await first.ExpectNothingAsync(300);
        await second.ExpectNothingAsync(100);
    }

    [Fact]
    public async Task Client_ack_consumers_on_different_nodes_share_a_queue_and_a_message_left_unacked_goes_to_the_other()
    {
        await using var nodes = await RabbitNodes.StartGroupAsync(rabbit, 2);
        var queue = Unique.Queue("handover");
        await using var keeper = await nodes[1].ConnectClientAsync();
        await keeper.SubscribeAsync(queue, "keeper", "client-individual", ("prefetch-count", "1"));
        string body;
        await using (var quitter = await nodes[0].ConnectClientAsync())
        {
            await quitter.SubscribeAsync(queue, "quitter", "client-individual", ("prefetch-count", "1"));
            await using var sender = await nodes[0].ConnectClientAsync();
            await sender.SendAsync(queue, "a", receipt: true);
            await sender.SendAsync(queue, "b", receipt: true);

            // With prefetch 1 each node's consumer holds one message; the quitter leaves without acking its one.
            var held = await quitter.ReceiveMessageAsync();
            body = held.BodyText;
            var kept = await keeper.ReceiveMessageAsync();
            Assert.NotEqual(body, kept.BodyText);
            await keeper.AckAsync(kept);
        }

        var again = await keeper.ReceiveMessageAsync();
        Assert.Equal(body, again.BodyText);
        Assert.Equal("true", again["redelivered"]);
        await keeper.AckAsync(again);
        await keeper.ExpectNothingAsync();
    }

    [Fact]
    public async Task Each_node_holds_one_amqp_connection_whatever_its_sessions_and_subscriptions()
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // counts sockets through /proc
        }

        await using var nodes = await RabbitNodes.StartGroupAsync(rabbit, 2);
        var topic = Unique.Topic("one-connection");
        var clients = new List<StompTestClient>();
        try
        {
            for (var n = 0; n < 2; n++)
            {
                for (var k = 0; k < 3; k++)
                {
                    var client = await nodes[n].ConnectClientAsync(k % 2 == 0 ? Transport.Tcp : Transport.WebSocket);
                    clients.Add(client);
                    await client.SubscribeAsync(topic, "topic");
                    await client.SubscribeAsync(Unique.Queue("one-connection"), "queue", "client-individual", ("prefetch-count", "3"));
                    await client.SubscribeAsync($"/exchange/amq.topic/one-connection.{n}.{k}", "exchange");
                    await client.SendAsync(Unique.Queue("one-connection"), "with a temp queue", receipt: true, ("reply-to", "/temp-queue/replies"));
                }

                var sender = await nodes[n].ConnectClientAsync();
                clients.Add(sender);
                await sender.SendAsync(topic, "hello", receipt: true);
                await sender.SendAsync("/exchange/amq.topic/one-connection.0.0", "hello", receipt: true);
            }

            // Earlier tests' nodes may still be closing their connections: give the count a moment to settle.
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var connections = ProcessSockets.CountConnectionsTo(rabbit.AmqpPort);
            while (connections != 2 && clock.Elapsed < TimeSpan.FromSeconds(10))
            {
                await Task.Delay(50);
                connections = ProcessSockets.CountConnectionsTo(rabbit.AmqpPort);
            }

            Assert.Equal(2, connections); // one per node
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Request_reply_through_temp_queues_works_across_nodes()
    {
        await using var nodes = await RabbitNodes.StartGroupAsync(rabbit, 3);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var requests = Unique.Queue("requests");
        await using var responder = await nodes[1].ConnectClientAsync();
        await using var bob = await nodes[2].ConnectClientAsync(Transport.WebSocket);
        await responder.SubscribeAsync(requests, "requests");
        string aliceReplyTo;
        await using (var alice = await nodes[0].ConnectClientAsync())
        {
            // Both requesters name their temp queue "r": each still gets only its own replies.
            await alice.SendAsync(requests, "alice", receipt: true, ("reply-to", "/temp-queue/r"), ("correlation-id", "c-alice"));
            await bob.SendAsync(requests, "bob", receipt: true, ("reply-to", "/temp-queue/r"), ("correlation-id", "c-bob"));

            var incoming = await responder.ReceiveMessagesAsync(2);
            foreach (var request in incoming)
            {
                var replyTo = request["reply-to"];
                Assert.NotNull(replyTo);
                Assert.StartsWith("/reply-queue/", replyTo, StringComparison.Ordinal);
                await responder.SendAsync(replyTo, "re:" + request.BodyText, receipt: true, ("correlation-id", request["correlation-id"]!));
            }

            Assert.NotEqual(incoming[0]["reply-to"], incoming[1]["reply-to"]);
            aliceReplyTo = incoming.Single(m => m.BodyText == "alice")["reply-to"]!;

            var toAlice = await alice.ReceiveMessageAsync();
            Assert.Equal("re:alice", toAlice.BodyText);
            Assert.Equal("c-alice", toAlice["correlation-id"]);
            Assert.Equal("/temp-queue/r", toAlice["subscription"]);
            var toBob = await bob.ReceiveMessageAsync();
            Assert.Equal("re:bob", toBob.BodyText);
            Assert.Equal("c-bob", toBob["correlation-id"]);
            await alice.ExpectNothingAsync(200);
            await bob.ExpectNothingAsync(100);

            // The temp queue lives in RabbitMQ while its connection does.
            Assert.True(await amqp.QueueExistsAsync("stomp.temp." + aliceReplyTo["/reply-queue/".Length..]));
            await alice.SendWithReceiptAsync(Broker.Stomp.StompCommand.Disconnect);
        }

        await Eventually.UntilAsync(
            async () => !await amqp.QueueExistsAsync("stomp.temp." + aliceReplyTo["/reply-queue/".Length..]),
            TimeSpan.FromSeconds(10),
            "the temp queue to be deleted once its requester disconnected");
        await amqp.CleanUpAsync(queues: [Unique.QueueName(requests)]);
    }
}
