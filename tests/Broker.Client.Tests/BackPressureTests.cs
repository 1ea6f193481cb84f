using System.Buffers.Binary;
using System.Diagnostics;
using Broker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Broker.Client.Tests;

/// <summary>
/// A subscription's bounded buffer: a consumer that does not read stops the client reading the socket, the broker's
/// flow control keeps the rest in its queue, and nothing piles up in the client; once it reads, everything arrives.
/// </summary>
public sealed class BackPressureTests(ITestOutputHelper output)
{
    private const int Count = 2000;
    private const int BodyBytes = 8192; // 16 MiB in all: far more than the buffers between broker and application hold

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_consumer_that_does_not_read_holds_messages_back_at_the_broker_and_then_gets_them_all(Transport transport)
    {
        await using var server = await BrokerServer.StartAsync("Broker:Outbound:MaxBufferedBytes=65536");
        await using var consumer = await Clients.ConnectAsync(server, transport, o => o with { SubscriptionBufferSize = 4 });
        await using var producer = await Clients.ConnectAsync(server, Transport.Tcp);
        var queue = Unique.Queue("slow");
        await using var subscription = await consumer.SubscribeAsync(queue);

        for (var i = 0; i < Count; i++)
        {
            var body = new byte[BodyBytes];
            BinaryPrimitives.WriteInt32LittleEndian(body, i);
            await producer.SendAsync(queue, body, i == Count - 1 ? Clients.Receipted : null);
        }

        // The application has read nothing: the broker still holds most of the stream (a few MiB at most sit in socket
        // buffers and the client's 4-message buffer).
        var held = await SettledDepthAsync(server, queue);
        output.WriteLine($"{transport}: the broker holds {held} of {Count} messages while the application reads nothing");
        Assert.True(held >= Count / 2, $"the broker holds only {held} of {Count} messages: the client read ahead into memory");
        Assert.Equal(StompConnectionState.Connected, consumer.State);

        for (var i = 0; i < Count; i++)
        {
            var message = await subscription.NextAsync();
            Assert.Equal(BodyBytes, message.Body.Length);
            Assert.Equal(i, BinaryPrimitives.ReadInt32LittleEndian(message.Body.Span));
        }

        Assert.Equal(0, server.QueueDepth(queue));
    }

    [Fact]
    public async Task A_per_subscription_buffer_size_overrides_the_clients()
    {
        await using var server = await BrokerServer.StartAsync("Broker:Outbound:MaxBufferedBytes=65536");
        await using var consumer = await Clients.ConnectAsync(server, Transport.Tcp, o => o with { SubscriptionBufferSize = 100_000 });
        await using var producer = await Clients.ConnectAsync(server, Transport.Tcp);
        var queue = Unique.Queue("override");
        await using var subscription = await consumer.SubscribeAsync(queue, new StompSubscribeOptions { BufferSize = 2 });

        for (var i = 0; i < Count; i++)
        {
            await producer.SendAsync(queue, new byte[BodyBytes], i == Count - 1 ? Clients.Receipted : null);
        }

        var held = await SettledDepthAsync(server, queue);
        Assert.True(held >= Count / 2, $"the broker holds only {held} of {Count} messages");
        for (var i = 0; i < Count; i++)
        {
            await subscription.NextAsync();
        }
    }

    // The queue depth once the broker has pushed all it can: unchanged for half a second.
    private static async Task<int> SettledDepthAsync(BrokerServer server, string queue)
    {
        var clock = Stopwatch.StartNew();
        var last = -1;
        var stableSince = TimeSpan.Zero;
        while (clock.Elapsed < Clients.Deadline)
        {
            var depth = server.QueueDepth(queue);
            if (depth != last)
            {
                last = depth;
                stableSince = clock.Elapsed;
            }
            else if (clock.Elapsed - stableSince > TimeSpan.FromMilliseconds(500))
            {
                return depth;
            }

            await Task.Delay(50);
        }

        Assert.Fail($"the depth of {queue} never settled (last {last})");
        return last;
    }
}
