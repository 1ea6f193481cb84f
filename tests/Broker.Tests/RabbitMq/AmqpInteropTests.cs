using System.Text;
using Broker.Stomp;
using Broker.Tests.Infrastructure;
using RabbitMQ.Client;

namespace Broker.Tests.RabbitMq;

/// <summary>
/// Plain RabbitMQ.Client publishers and consumers on one side, STOMP clients on the other: the well-known headers map
/// to AMQP properties and every other header to AMQP headers, both ways.
/// </summary>
[Collection(RabbitMqTestGroup.Name)]
public sealed class AmqpInteropTests(RabbitMqServer rabbit)
{
    [Fact]
    public async Task An_amqp_message_with_every_property_and_custom_headers_arrives_as_a_well_formed_message()
    {
        await using var node = await RabbitNodes.StartAsync(rabbit);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var destination = Unique.Queue("from-amqp");
        var queue = Unique.QueueName(destination);
        await using var subscriber = await node.ConnectClientAsync();
        await subscriber.SubscribeAsync(destination, "s", "client-individual");

        var properties = new BasicProperties
        {
            ContentType = "application/json",
            ContentEncoding = "utf-8",
            CorrelationId = "corr-1",
            ReplyTo = "replies",
            MessageId = "amqp-id-1",
            DeliveryMode = DeliveryModes.Persistent,
            Priority = 5,
            Expiration = "600000",
            Type = "order.created",
            UserId = "guest", // RabbitMQ checks it is the connection's user
            AppId = "billing",
            Timestamp = new AmqpTimestamp(1_700_000_000),
            Headers = new Dictionary<string, object?>
            {
                ["x-text"] = "hello",
                ["x-colon-newline"] = "a:b\nc",
                ["x-unicode"] = "héllo ✓",
                ["x-int"] = 42,
                ["x-long"] = 1_234_567_890_123L,
                ["x-bool"] = true,
                ["x-table"] = new Dictionary<string, object?> { ["nested"] = "no STOMP form" },

                // Names the broker sets itself on a MESSAGE: an AMQP header may not shadow or duplicate them.
                ["destination"] = "/queue/elsewhere",
                ["subscription"] = "not-yours",
                ["message-id"] = "forged",
                ["ack"] = "forged",
                ["content-length"] = "999",
                ["redelivered"] = "true",
            },
        };
        await amqp.PublishAsync("", queue, """{"id":1}""", properties);

        var message = await subscriber.ReceiveMessageAsync();
        Assert.Equal("""{"id":1}""", message.BodyText);
        Assert.Equal("application/json", message["content-type"]);
        Assert.Equal("utf-8", message["content-encoding"]);
        Assert.Equal("corr-1", message["correlation-id"]);
        Assert.Equal("replies", message["reply-to"]);
        Assert.Equal("amqp-id-1", message["amqp-message-id"]);
        Assert.Equal("true", message["persistent"]);
        Assert.Equal("5", message["priority"]);
        Assert.Equal("600000", message["expiration"]);
        Assert.Equal("order.created", message["type"]);
        Assert.Equal("guest", message["user-id"]);
        Assert.Equal("billing", message["app-id"]);
        Assert.Equal("1700000000", message["timestamp"]);
        Assert.Equal("hello", message["x-text"]);
        Assert.Equal("a:b\nc", message["x-colon-newline"]);
        Assert.Equal("héllo ✓", message["x-unicode"]);
        Assert.Equal("42", message["x-int"]);
        Assert.Equal("1234567890123", message["x-long"]);
        Assert.Equal("true", message["x-bool"]);
        Assert.Null(message["x-table"]);

        // Well-formed: one of each per-delivery header, and they are the broker's.
        Assert.Equal([destination], message.All("destination"));
        Assert.Equal(["s"], message.All("subscription"));
        var messageId = Assert.Single(message.All("message-id"));
        Assert.NotEqual("forged", messageId);
        Assert.Equal([messageId], message.All("ack"));
        Assert.Equal([Encoding.UTF8.GetByteCount("""{"id":1}""").ToString(System.Globalization.CultureInfo.InvariantCulture)], message.All("content-length"));
        Assert.Empty(message.All("redelivered"));
        await subscriber.AckAsync(message);
    }

    [Fact]
    public async Task An_amqp_message_without_properties_and_with_a_binary_body_arrives_intact()
    {
        await using var node = await RabbitNodes.StartAsync(rabbit);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var destination = Unique.Queue("bare");
        await using var subscriber = await node.ConnectClientAsync(Transport.WebSocket);
        await subscriber.SubscribeAsync(destination, "s");

        byte[] binary = [0, 1, 2, 0xFF, 0xFE, 0, (byte)'\n', 0];
        await amqp.PublishAsync("", Unique.QueueName(destination), []);
        await amqp.PublishAsync("", Unique.QueueName(destination), binary);

        var empty = await subscriber.ReceiveMessageAsync();
        Assert.Empty(empty.Body);
        Assert.Equal("0", empty["content-length"]);
        Assert.Equal(destination, empty["destination"]);
        Assert.Null(empty["content-type"]);
        Assert.Null(empty["persistent"]);
        Assert.Null(empty["amqp-message-id"]);
        var bytes = await subscriber.ReceiveMessageAsync();
        Assert.Equal(binary, bytes.Body);
        Assert.Equal("8", bytes["content-length"]);
    }

    [Fact]
    public async Task A_stomp_send_arrives_at_a_plain_amqp_consumer_with_its_properties_and_headers()
    {
        await using var node = await RabbitNodes.StartAsync(rabbit);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var destination = Unique.Queue("to-amqp");
        var queue = Unique.QueueName(destination);
        await using var client = await node.ConnectClientAsync();

        await client.SendAsync(
            destination,
            "payload",
            receipt: true,
            ("content-type", "text/plain"),
            ("content-encoding", "identity"),
            ("correlation-id", "corr-9"),
            ("reply-to", "/queue/replies"),
            ("persistent", "true"),
            ("priority", "7"),
            ("expiration", "600000"),
            ("type", "greeting"),
            ("user-id", "guest"),
            ("app-id", "stomp-tests"),
            ("timestamp", "1700000001"),
            ("amqp-message-id", "m-42"),
            ("x-custom", "v1"),
            ("x-colon", "a:b"),
            ("x-unicode", "héllo ✓"),
            ("x-custom", "repeated: the first counts"));

        var got = await amqp.GetAsync(queue);
        var p = got.Properties;
        Assert.Equal("payload", got.BodyText);
        Assert.Equal("text/plain", p.ContentType);
        Assert.Equal("identity", p.ContentEncoding);
        Assert.Equal("corr-9", p.CorrelationId);
        Assert.Equal("/queue/replies", p.ReplyTo);
        Assert.True(p.Persistent);
        Assert.Equal(DeliveryModes.Persistent, p.DeliveryMode);
        Assert.Equal(7, p.Priority);
        Assert.Equal("600000", p.Expiration);
        Assert.Equal("greeting", p.Type);
        Assert.Equal("guest", p.UserId);
        Assert.Equal("stomp-tests", p.AppId);
        Assert.Equal(1_700_000_001, p.Timestamp.UnixTime);
        Assert.Equal("m-42", p.MessageId);
        Assert.Equal("v1", got.Header("x-custom"));
        Assert.Equal("a:b", got.Header("x-colon"));
        Assert.Equal("héllo ✓", got.Header("x-unicode"));

        // Frame-level headers are not message headers.
        var names = p.Headers?.Keys.ToList() ?? [];
        Assert.DoesNotContain("destination", names);
        Assert.DoesNotContain("receipt", names);
        Assert.DoesNotContain("content-length", names);
        Assert.DoesNotContain("content-type", names);
        Assert.DoesNotContain("persistent", names);
        Assert.DoesNotContain("amqp-message-id", names);
    }

    [Fact]
    public async Task A_plain_amqp_responder_replies_to_a_stomp_requesters_temp_queue_by_the_reply_to_property()
    {
        await using var node = await RabbitNodes.StartAsync(rabbit);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var requests = Unique.Id("rpc");
        await amqp.Channel.QueueDeclareAsync(requests, durable: false, exclusive: false, autoDelete: false);
        try
        {
            await using var requester = await node.ConnectClientAsync();
            await requester.SendAsync($"/amq/queue/{requests}", "question", receipt: true, ("reply-to", "/temp-queue/answers"), ("correlation-id", "q1"));

            // As with RabbitMQ's STOMP plugin: reply-to is /reply-queue/ followed by the AMQP name of the reply queue,
            // so an AMQP responder replies through the default exchange with that name as routing key.
            var request = await amqp.GetAsync(requests);
            var replyTo = request.Properties.ReplyTo;
            Assert.NotNull(replyTo);
            Assert.StartsWith("/reply-queue/", replyTo, StringComparison.Ordinal);
            await amqp.PublishAsync("", replyTo["/reply-queue/".Length..], "answer", new BasicProperties { CorrelationId = request.Properties.CorrelationId });

            var reply = await requester.ReceiveMessageAsync();
            Assert.Equal("answer", reply.BodyText);
            Assert.Equal("q1", reply["correlation-id"]);
            Assert.Equal("/temp-queue/answers", reply["subscription"]);
        }
        finally
        {
            await amqp.CleanUpAsync(queues: [requests]);
        }
    }

    [Fact]
    public async Task Non_persistent_and_unparseable_values_map_sensibly()
    {
        await using var node = await RabbitNodes.StartAsync(rabbit);
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var destination = Unique.Queue("odd");
        await using var client = await node.ConnectClientAsync();

        await client.SendAsync(destination, "x", receipt: true, ("persistent", "false"), ("priority", "high"));
        var got = await amqp.GetAsync(Unique.QueueName(destination));
        Assert.False(got.Properties.Persistent);
        Assert.False(got.Properties.IsPriorityPresent());
        Assert.Equal("high", got.Header("priority")); // kept, as a header, rather than dropped

        await client.SendAsync(destination, "y", receipt: true);
        got = await amqp.GetAsync(Unique.QueueName(destination));
        Assert.False(got.Properties.IsDeliveryModePresent());
    }

    [Fact]
    public async Task Headers_survive_a_stomp_to_stomp_trip_through_rabbitmq_across_nodes()
    {
        await using var nodes = await RabbitNodes.StartGroupAsync(rabbit, 2);
        var destination = Unique.Queue("roundtrip");
        await using var subscriber = await nodes[1].ConnectClientAsync(Transport.WebSocket);
        await subscriber.SubscribeAsync(destination, "s");
        await using var sender = await nodes[0].ConnectClientAsync();

        byte[] body = [0, 0xC3, 0x28, 0, 255];
        await sender.SendFrameAsync(
            StompCommand.Send,
            [
                ("destination", destination),
                ("receipt", "r"),
                ("content-type", "application/octet-stream"),
                ("correlation-id", "c:1"),
                ("persistent", "true"),
                ("x-escaped", "colon:back\\slash\nnewline"),
                ("x-empty", ""),
            ],
            body);
        await sender.ExpectReceiptAsync("r");

        var message = await subscriber.ReceiveMessageAsync();
        Assert.Equal(body, message.Body);
        Assert.Equal("application/octet-stream", message["content-type"]);
        Assert.Equal("c:1", message["correlation-id"]);
        Assert.Equal("true", message["persistent"]);
        Assert.Equal("colon:back\\slash\nnewline", message["x-escaped"]);
        Assert.Equal("", message["x-empty"]);
        Assert.Equal(destination, message["destination"]);
    }
}
