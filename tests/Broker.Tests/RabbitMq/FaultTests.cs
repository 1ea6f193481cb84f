using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Broker.Stomp;
using Broker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Broker.Tests.RabbitMq;

/// <summary>
/// RabbitMQ goes away in the middle of a stream and comes back: sessions stay up, every SEND is either receipted
/// (and kept) or refused with an ERROR, subscriptions resume, the health endpoint follows the link.
/// </summary>
[Collection(RabbitMqTestGroup.Name)]
public sealed class FaultTests(RabbitMqServer rabbit, ITestOutputHelper output)
{
    private static readonly TimeSpan Outage = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_send_rabbitmq_does_not_confirm_in_time_is_an_error_naming_the_timeout_and_the_node_goes_on()
    {
        if (!rabbit.IsPrivate)
        {
            output.WriteLine("skipped: RABBITMQ_URL points at a RabbitMQ these tests may not freeze");
            return;
        }

        await using var node = await RabbitNodes.StartAsync(rabbit, "Broker:RabbitMq:PublishTimeout=00:00:01");
        await using var amqp = await AmqpPeer.ConnectAsync(rabbit);
        var queue = Unique.Queue("unconfirmed");
        await using var client = await node.ConnectClientAsync();
        await client.SendAsync(queue, "confirmed", receipt: true); // the publishing channel is open and confirms flow

        ReceivedFrame? error = null;
        var waited = TimeSpan.Zero;
        await rabbit.WhileFrozenAsync(async () =>
        {
            var receipt = Unique.Id("unconfirmed");
            var started = System.Diagnostics.Stopwatch.StartNew();
            await client.SendFrameAsync(StompCommand.Send, [("destination", queue), ("receipt", receipt)], "never confirmed"u8.ToArray());
            error = await client.ExpectErrorThenCloseAsync(receipt);
            waited = started.Elapsed;
        });

        Assert.Equal("backend unavailable: RabbitMQ did not confirm the message within 1 s", error!["message"]);
        Assert.True(waited >= TimeSpan.FromSeconds(0.9), $"refused after {waited.TotalMilliseconds:0} ms, before the 1 s timeout");
        await node.AssertStillServesOthersAsync();
        await amqp.CleanUpAsync(queues: [Unique.QueueName(queue)]);
    }

    [Fact]
    public async Task A_rabbitmq_restart_mid_stream_loses_no_receipted_message_and_sessions_and_subscriptions_survive()
    {
        if (!rabbit.IsPrivate)
        {
            output.WriteLine("skipped: RABBITMQ_URL points at a RabbitMQ these tests may not stop");
            return;
        }

        await using var producerNode = await RabbitNodes.StartAsync(rabbit);
        await using var consumerNode = await RabbitNodes.StartAsync(rabbit);
        var producerLog = LogCapture.Attach(producerNode);
        var stream = Unique.Queue("stream");
        var kept = Unique.Queue("kept");
        var topic = Unique.Topic("live");
        var liveQueue = Unique.Queue("live");
        var lateQueue = Unique.Queue("late");
        var lateTopic = Unique.Topic("late");

        // A subscriber on the other node, idle through the outage.
        await using var subscriber = await consumerNode.ConnectClientAsync();
        await subscriber.SubscribeAsync(topic, "topic");
        await subscriber.SubscribeAsync(liveQueue, "queue");

        // A subscriber of an existing non-durable queue, which the restart takes away: its consumer cannot be
        // restored, and that must not keep the node from restoring everything else.
        var consumerLog = LogCapture.Attach(consumerNode);
        var transient = Unique.Id("transient");
        await using (var amqp = await AmqpPeer.ConnectAsync(rabbit))
        {
            await amqp.Channel.QueueDeclareAsync(transient, durable: false, exclusive: false, autoDelete: false);
        }

        await using var orphan = await consumerNode.ConnectClientAsync();
        await orphan.SubscribeAsync($"/amq/queue/{transient}", "transient");

        // Persistent messages waiting in a durable queue across the restart.
        await using (var client = await producerNode.ConnectClientAsync())
        {
            for (var i = 0; i < 5; i++)
            {
                await client.SendAsync(kept, $"kept-{i}", receipt: true, ("persistent", "true"));
            }
        }

        var producer = new ReceiptedProducer(producerNode, stream);
        using var stop = new CancellationTokenSource();
        var running = producer.RunAsync(stop.Token);
        StompTestClient? late = null;
        try
        {
            await Wait.UntilAsync(() => producer.Receipted.Count >= 20, TimeSpan.FromSeconds(15), "20 receipts before the outage");
            var amqpPort = rabbit.AmqpPort;
            await rabbit.StopAsync();

            await RabbitNodes.WaitForHealthAsync(producerNode, HttpStatusCode.ServiceUnavailable, Outage);
            await RabbitNodes.WaitForHealthAsync(consumerNode, HttpStatusCode.ServiceUnavailable, Outage);
            Assert.Equal(HttpStatusCode.OK, await producerNode.GetHealthAsync("/health/live"));
            await Wait.UntilAsync(() => !producer.Refused.IsEmpty, Outage, "a SEND refused while RabbitMQ is down");

            // A subscription made while RabbitMQ is away is set up once it is back.
            late = await consumerNode.ConnectClientAsync(Transport.WebSocket);
            await late.SubscribeAsync(lateQueue, "late");
            await late.SubscribeAsync(lateTopic, "late-topic");

            await rabbit.StartAsync();
            Assert.Equal(amqpPort, rabbit.AmqpPort); // the nodes keep their configured URI

            await RabbitNodes.WaitForHealthAsync(producerNode, HttpStatusCode.OK, Outage);
            await RabbitNodes.WaitForHealthAsync(consumerNode, HttpStatusCode.OK, Outage);
            var receiptedAtRestart = producer.Receipted.Count;
            await Wait.UntilAsync(() => producer.Receipted.Count >= receiptedAtRestart + 20, Outage, "20 receipts after the restart");
        }
        finally
        {
            await stop.CancelAsync();
            await running;
        }

        await using var lateClient = late;
        output.WriteLine($"receipted {producer.Receipted.Count}, refused {producer.Refused.Count}");
        Assert.True(producer.Unexpected.IsEmpty, "every SEND gets a RECEIPT or an ERROR saying the backend is unavailable: " + string.Join(" | ", producer.Unexpected));
        Assert.True(producerLog.Contains("RabbitMQ backend lost its connection"), "a log line says the link was lost:\n" + string.Join("\n", producerLog.Lines));
        Assert.True(consumerLog.Contains($"could not restore the consumer of /amq/queue/{transient}"), "a log line names the consumer that could not be restored:\n" + string.Join("\n", consumerLog.Lines));

        // The subscriber's session stayed up, and its topic and queue subscriptions resume.
        await using (var sender = await producerNode.ConnectClientAsync())
        {
            await sender.SendAsync(topic, "topic after restart", receipt: true);
            await sender.SendAsync(liveQueue, "queue after restart", receipt: true);
            await sender.SendAsync(lateQueue, "late after restart", receipt: true);
            await sender.SendAsync(lateTopic, "late topic after restart", receipt: true);
        }

        var resumed = await subscriber.ReceiveMessagesAsync(2);
        Assert.Equal(["queue after restart", "topic after restart"], resumed.Select(m => m.BodyText).Order());
        var lateMessages = await late!.ReceiveMessagesAsync(2);
        Assert.Equal(["late after restart", "late topic after restart"], lateMessages.Select(m => m.BodyText).Order());

        // Persistent messages in a durable queue survived the restart.
        await using var reader = await consumerNode.ConnectClientAsync();
        await reader.SubscribeAsync(kept, "kept");
        var survivors = await reader.ReceiveMessagesAsync(5);
        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"kept-{i}"), survivors.Select(m => m.BodyText));

        // Every receipted message of the stream is there (at least once); nothing else is.
        await reader.SubscribeAsync(stream, "stream");
        var missing = new HashSet<string>(producer.Receipted);
        var sent = new HashSet<string>(producer.Receipted.Concat(producer.Refused));
        var duplicates = 0;
        var seen = new HashSet<string>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (missing.Count > 0 && DateTime.UtcNow < deadline)
        {
            var message = await reader.ReceiveMessageAsync();
            Assert.Contains(message.BodyText, sent);
            missing.Remove(message.BodyText);
            duplicates += seen.Add(message.BodyText) ? 0 : 1;
        }

        output.WriteLine($"duplicates: {duplicates}");
        Assert.True(missing.Count == 0, $"receipted but lost: {string.Join(", ", missing.Order())}");
    }

    /// <summary>
    /// Sends persistent, receipted SENDs one at a time and records what answered each: a RECEIPT, an ERROR saying the
    /// backend is unavailable (then it reconnects and goes on), or anything else (a failure).
    /// </summary>
    private sealed class ReceiptedProducer(BrokerServer node, string destination)
    {
        public ConcurrentQueue<string> Receipted { get; } = new();

        public ConcurrentQueue<string> Refused { get; } = new();

        public ConcurrentQueue<string> Unexpected { get; } = new();

        public async Task RunAsync(CancellationToken stop)
        {
            StompTestClient? client = null;
            var sequence = 0;
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    client ??= await node.ConnectClientAsync();
                    var id = $"m-{sequence++:D6}";
                    ReceivedFrame? answer;
                    var failure = "no answer in 20 s, or the connection closed";
                    try
                    {
                        await client.SendFrameAsync(StompCommand.Send, [("destination", destination), ("receipt", "r-" + id), ("persistent", "true")], Encoding.UTF8.GetBytes(id), CancellationToken.None);
                        answer = await client.TryReceiveAsync(TimeSpan.FromSeconds(20));
                    }
                    catch (IOException ex)
                    {
                        answer = null;
                        failure = ex.Message;
                    }

                    if (answer is { Command: StompCommand.Receipt } && answer["receipt-id"] == "r-" + id)
                    {
                        Receipted.Enqueue(id);
                        await Task.Delay(5, CancellationToken.None); // pace the stream; keeps the backlog small
                        continue;
                    }

                    if (answer is { Command: StompCommand.Error } && answer["message"]?.Contains("backend unavailable", StringComparison.Ordinal) == true && answer["receipt-id"] == "r-" + id)
                    {
                        Refused.Enqueue(id);
                    }
                    else
                    {
                        Unexpected.Enqueue($"{id}: {answer?.ToString() ?? failure}");
                    }

                    await client.DisposeAsync();
                    client = null;
                    await Task.Delay(50, CancellationToken.None); // retry pace while RabbitMQ is away
                }
            }
            finally
            {
                if (client is not null)
                {
                    await client.DisposeAsync();
                }
            }
        }
    }
}
