using System.Collections.Concurrent;
using System.Globalization;
using Broker.Tests.Infrastructure;

namespace Broker.Tests;

/// <summary>Many clients at once: nothing lost, nothing duplicated, per-producer order kept.</summary>
public sealed class ConcurrencyTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private const int QueueProducers = 25;
    private const int TopicProducers = 25;
    private const int QueueConsumers = 25;
    private const int TopicConsumers = 25;
    private const int PerProducer = 20;

    private BrokerServer Server => broker.Server;

    [Fact]
    public async Task A_hundred_clients_exchange_messages_with_none_lost_or_duplicated()
    {
        var queue = Unique.Queue("many");
        var topic = Unique.Topic("many");
        const int queueTotal = QueueProducers * PerProducer;
        const int topicTotal = TopicProducers * PerProducer;

        // Half the clients of each role over WebSocket.
        static Transport TransportOf(int i) => i % 2 == 0 ? Transport.Tcp : Transport.WebSocket;
        var queueConsumers = await Task.WhenAll(Enumerable.Range(0, QueueConsumers).Select(async i =>
        {
            var c = await Server.ConnectClientAsync(TransportOf(i));
            await c.SubscribeAsync(queue, "q");
            return c;
        }));
        var topicConsumers = await Task.WhenAll(Enumerable.Range(0, TopicConsumers).Select(async i =>
        {
            var c = await Server.ConnectClientAsync(TransportOf(i + 1));
            await c.SubscribeAsync(topic, "t");
            return c;
        }));
        var producers = await Task.WhenAll(Enumerable.Range(0, QueueProducers + TopicProducers).Select(i => Server.ConnectClientAsync(TransportOf(i))));

        try
        {
            var queueReceived = new ConcurrentBag<string>();
            var queueCount = 0;
            var queueReaders = queueConsumers.Select(c => Task.Run(async () =>
            {
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
                while (Volatile.Read(ref queueCount) < queueTotal && DateTime.UtcNow < deadline)
                {
                    if (await c.TryReceiveAsync(TimeSpan.FromMilliseconds(100)) is { } frame)
                    {
                        Assert.Equal(Stomp.StompCommand.Message, frame.Command);
                        queueReceived.Add(frame.BodyText);
                        Interlocked.Increment(ref queueCount);
                    }
                }
            })).ToList();
            var topicReaders = topicConsumers.Select(c => Task.Run(async () =>
            {
                var got = new List<string>(topicTotal);
                for (var i = 0; i < topicTotal; i++)
                {
                    got.Add((await c.ReceiveMessageAsync(TimeSpan.FromSeconds(30))).BodyText);
                }

                return got;
            })).ToList();

            var sending = producers.Select((p, n) => Task.Run(async () =>
            {
                var (destination, prefix) = n < QueueProducers ? (queue, $"q{n}") : (topic, $"t{n}");
                for (var i = 0; i < PerProducer; i++)
                {
                    await p.SendAsync(destination, $"{prefix}:{i.ToString("000", CultureInfo.InvariantCulture)}", receipt: i == PerProducer - 1);
                }
            }));
            await Task.WhenAll(sending);
            await Task.WhenAll(queueReaders);
            var topicResults = await Task.WhenAll(topicReaders);

            // Queue: every message exactly once across all consumers.
            var expectedQueue = Enumerable.Range(0, QueueProducers).SelectMany(n => Enumerable.Range(0, PerProducer).Select(i => $"q{n}:{i:000}")).Order().ToList();
            Assert.Equal(expectedQueue, queueReceived.Order().ToList());

            // Topic: every consumer got every message exactly once, each producer's in the order sent.
            var expectedTopic = Enumerable.Range(QueueProducers, TopicProducers).SelectMany(n => Enumerable.Range(0, PerProducer).Select(i => $"t{n}:{i:000}")).Order().ToList();
            foreach (var got in topicResults)
            {
                Assert.Equal(expectedTopic, got.Order().ToList());
                foreach (var stream in got.GroupBy(b => b.Split(':')[0]))
                {
                    Assert.Equal(stream.Order(), stream);
                }
            }

            // And nothing more arrives anywhere.
            var extras = await Task.WhenAll(queueConsumers.Concat(topicConsumers).Select(c => c.TryReceiveAsync(TimeSpan.FromMilliseconds(300))));
            Assert.All(extras, Assert.Null);
        }
        finally
        {
            await Task.WhenAll(queueConsumers.Concat(topicConsumers).Concat(producers).Select(c => c.DisposeAsync().AsTask()));
        }
    }
}
