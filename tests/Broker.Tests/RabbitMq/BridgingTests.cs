using Broker.Stomp;
using Broker.Tests.Infrastructure;
using RabbitMQ.Client;

namespace Broker.Tests.RabbitMq;

/// <summary>
/// Destinations as RabbitMQ's own STOMP plugin names them, against exchanges and queues that exist in RabbitMQ
/// already: /exchange/E/key, /amq/queue/Q, /queue/Q (declared durable), /topic/X (a fanout exchange).
/// </summary>
[Collection(RabbitMqTestGroup.Name)]
public sealed class BridgingTests(RabbitMqServer rabbit)
{
    [Fact]
    public async Task An_amq_topic_pattern_subscription_gets_matching_routing_keys_only_from_stomp_and_amqp()
    {
        await using var nodes = await RabbitNodes.StartGroupAsync(rabbit, 2);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        await using var first = await nodes[0].ConnectClientAsync();
        await using var second = await nodes[1].ConnectClientAsync(Transport.WebSocket);
        await using var sender = await nodes[1].ConnectClientAsync();

        // Each subscription binds its own private queue to amq.topic with the pattern as binding key.
        await first.SubscribeAsync("/exchange/amq.topic/stocks.*", "stocks");
        await second.SubscribeAsync("/exchange/amq.topic/stocks.*", "stocks");

        await sender.SendAsync("/exchange/amq.topic/bonds.x", "bonds", receipt: true);
        await sender.SendAsync("/exchange/amq.topic/stocks.ibm.deep", "too deep", receipt: true);
        await sender.SendAsync("/exchange/amq.topic/stocks.ibm", "ibm", receipt: true);
        await amqp.PublishAsync("amq.topic", "stocks.msft", "msft");
        await amqp.PublishAsync("amq.topic", "bonds.y", "bonds from amqp");

        foreach (var client in new[] { first, second })
        {
            var ibm = await client.ReceiveMessageAsync();
            Assert.Equal("ibm", ibm.BodyText);
            Assert.Equal("/exchange/amq.topic/stocks.ibm", ibm["destination"]);
            Assert.Equal("stocks", ibm["subscription"]);
            var msft = await client.ReceiveMessageAsync();
            Assert.Equal("msft", msft.BodyText);
            Assert.Equal("/exchange/amq.topic/stocks.msft", msft["destination"]);
            await client.ExpectNothingAsync(300);
        }
    }

    [Fact]
    public async Task Exchange_destinations_publish_with_the_routing_key_and_subscribe_with_the_binding_key()
    {
        await using var node = await RabbitNodes.StartAsync(rabbit);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var exchange = Unique.Id("orders");
        var queue = Unique.Id("orders-eu");
        await amqp.Channel.ExchangeDeclareAsync(exchange, ExchangeType.Direct, durable: false, autoDelete: false);
        await amqp.Channel.QueueDeclareAsync(queue, durable: false, exclusive: false, autoDelete: false);
        await amqp.Channel.QueueBindAsync(queue, exchange, "eu");
        try
        {
            await using var client = await node.ConnectClientAsync();
            await client.SendAsync($"/exchange/{exchange}/eu", "for eu", receipt: true);
            await client.SendAsync($"/exchange/{exchange}/us", "for us", receipt: true);
            var got = await amqp.GetAsync(queue);
            Assert.Equal("for eu", got.BodyText);
            Assert.Equal(exchange, got.Exchange);
            Assert.Equal("eu", got.RoutingKey);
            Assert.Equal(0u, await amqp.ReadyCountAsync(queue)); // "us" matched no binding

            await client.SubscribeAsync($"/exchange/{exchange}/us", "us");
            await amqp.PublishAsync(exchange, "us", "from amqp");
            await amqp.PublishAsync(exchange, "eu", "not mine");
            var message = await client.ReceiveMessageAsync();
            Assert.Equal("from amqp", message.BodyText);
            Assert.Equal($"/exchange/{exchange}/us", message["destination"]);
            await client.ExpectNothingAsync(300);
        }
        finally
        {
            await amqp.CleanUpAsync(queues: [queue], exchanges: [exchange]);
        }
    }

    [Fact]
    public async Task A_missing_exchange_or_amq_queue_is_an_error_and_nothing_is_created()
    {
        await using var node = await RabbitNodes.StartAsync(rabbit);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var missingQueue = Unique.Id("missing");
        var missingExchange = Unique.Id("missing");

        await using (var client = await node.ConnectClientAsync())
        {
            await client.SendFrameAsync(StompCommand.Send, [("destination", $"/amq/queue/{missingQueue}"), ("receipt", "r1")], "x"u8.ToArray());
            var error = await client.ExpectErrorThenCloseAsync("r1");
            Assert.Contains(missingQueue, error["message"], StringComparison.Ordinal);
        }

        await using (var client = await node.ConnectClientAsync())
        {
            await client.SendFrameAsync(StompCommand.Subscribe, [("destination", $"/exchange/{missingExchange}/k"), ("id", "s"), ("receipt", "r2")]);
            var error = await client.ExpectErrorThenCloseAsync("r2");
            Assert.Contains(missingExchange, error["message"], StringComparison.Ordinal);
        }

        Assert.Null(await amqp.ReadyCountAsync(missingQueue));
        Assert.False(await amqp.ExchangeExistsAsync(missingExchange));

        // The node and its RabbitMQ link are fine afterwards.
        await node.AssertStillServesOthersAsync();
    }

    [Fact]
    public async Task An_amq_queue_destination_uses_an_existing_queue_without_declaring_it()
    {
        await using var nodes = await RabbitNodes.StartGroupAsync(rabbit, 2);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var queue = Unique.Id("existing");

        // Declared by "another system" with arguments the broker does not know: a declare by the broker would fail.
        await amqp.Channel.QueueDeclareAsync(queue, durable: false, exclusive: false, autoDelete: false, arguments: new Dictionary<string, object?> { ["x-max-length"] = 100 });
        try
        {
            await using var sender = await nodes[0].ConnectClientAsync();
            await sender.SendAsync($"/amq/queue/{queue}", "from stomp", receipt: true);
            var got = await amqp.GetAsync(queue);
            Assert.Equal("from stomp", got.BodyText);
            Assert.Equal("", got.Exchange);
            Assert.Equal(queue, got.RoutingKey);

            await using var consumer = await nodes[1].ConnectClientAsync();
            await consumer.SubscribeAsync($"/amq/queue/{queue}", "existing", "client-individual");
            await amqp.PublishAsync("", queue, "from amqp");
            await sender.SendAsync($"/amq/queue/{queue}", "from the other node", receipt: true);
            var first = await consumer.ReceiveMessageAsync();
            var second = await consumer.ReceiveMessageAsync();

            // Two publishers on two connections: RabbitMQ promises no order between them.
            Assert.Equal(["from amqp", "from the other node"], new[] { first.BodyText, second.BodyText }.Order(StringComparer.Ordinal));
            Assert.Equal($"/amq/queue/{queue}", first["destination"]);
            await consumer.AckAsync(first);
            await consumer.AckAsync(second);
            await consumer.SendWithReceiptAsync(StompCommand.Unsubscribe, ("id", "existing"));

            // Still there, still empty, not deleted by the broker.
            Assert.Equal(0u, await amqp.ReadyCountAsync(queue));
        }
        finally
        {
            await amqp.CleanUpAsync(queues: [queue]);
        }
    }

    [Fact]
    public async Task A_queue_destination_is_a_durable_queue_the_broker_declares()
    {
        await using var node = await RabbitNodes.StartAsync(rabbit);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var destination = Unique.Queue("declared");
        var name = Unique.QueueName(destination);
        try
        {
            await using var client = await node.ConnectClientAsync();
            await client.SendAsync(destination, "kept", receipt: true);

            // Redeclaring with the same attributes succeeds only if it is durable, not exclusive, not auto-delete.
            var declared = await amqp.Channel.QueueDeclareAsync(name, durable: true, exclusive: false, autoDelete: false);
            Assert.Equal(1u, declared.MessageCount);
            var got = await amqp.GetAsync(name);
            Assert.Equal("kept", got.BodyText);
        }
        finally
        {
            await amqp.CleanUpAsync(queues: [name]);
        }
    }

    [Fact]
    public async Task A_topic_is_a_fanout_exchange_named_with_the_configured_prefix_and_bridges_both_ways()
    {
        var prefix = Unique.Id("custom") + ".";
        await using var node = await RabbitNodes.StartAsync(rabbit, $"Broker:RabbitMq:TopicExchangePrefix={prefix}");
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var exchange = prefix + "news";
        var tap = Unique.Id("tap");
        try
        {
            await using var subscriber = await node.ConnectClientAsync();
            await subscriber.SubscribeAsync("/topic/news", "news");

            // Redeclaring succeeds only with the same type and durability.
            await amqp.Channel.ExchangeDeclareAsync(exchange, ExchangeType.Fanout, durable: true, autoDelete: false);
            await amqp.Channel.QueueDeclareAsync(tap, durable: false, exclusive: false, autoDelete: false);
            await amqp.Channel.QueueBindAsync(tap, exchange, "");

            await amqp.PublishAsync(exchange, "ignored-by-fanout", "from amqp");
            var fromAmqp = await subscriber.ReceiveMessageAsync();
            Assert.Equal("from amqp", fromAmqp.BodyText);
            Assert.Equal("/topic/news", fromAmqp["destination"]);

            await using var sender = await node.ConnectClientAsync();
            await sender.SendAsync("/topic/news", "from stomp", receipt: true);
            Assert.Equal("from stomp", (await subscriber.ReceiveMessageAsync()).BodyText);
            var tapped = await amqp.GetAsync(tap);
            Assert.Equal("from amqp", tapped.BodyText);
            tapped = await amqp.GetAsync(tap);
            Assert.Equal("from stomp", tapped.BodyText);
            Assert.Equal(exchange, tapped.Exchange);
        }
        finally
        {
            await amqp.CleanUpAsync(queues: [tap], exchanges: [exchange]);
        }
    }
}
