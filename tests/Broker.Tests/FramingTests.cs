using Broker.Stomp;
using Broker.Tests.Infrastructure;

namespace Broker.Tests;

/// <summary>Frames split and batched on the wire, large and binary bodies, EOL variants (checklist 1-2, 11-15).</summary>
public sealed class FramingTests(BrokerFixture broker) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => broker.Server;

    [Fact]
    public async Task A_frame_written_one_byte_at_a_time_over_tcp_is_parsed()
    {
        var queue = Unique.Queue();
        await using var client = await Server.OpenAsync(Transport.Tcp);
        foreach (var b in Frames.Bytes("CONNECT\naccept-version:1.2\nhost:/\n\n\0"))
        {
            await client.SendRawAsync(new[] { b });
        }

        Assert.Equal(StompCommand.Connected, (await client.ReceiveAsync()).Command);
        await client.SubscribeAsync(queue, "q");

        var frame = Frames.Send(queue, [0, 1, 2, 3, 0], ("x-a", "b\\cc"), ("receipt", "bytewise"));
        foreach (var b in frame)
        {
            await client.SendRawAsync(new[] { b });
        }

        var message = await client.ReceiveMessageAsync();
        Assert.Equal(new byte[] { 0, 1, 2, 3, 0 }, message.Body);
        Assert.Equal("b:c", message["x-a"]);
        await client.ExpectReceiptAsync("bytewise");
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Many_frames_in_one_write_are_all_processed(Transport transport)
    {
        var queue = Unique.Queue();
        await using var client = await Server.ConnectClientAsync(transport);
        await client.SubscribeAsync(queue, "q");

        var batch = new List<byte>();
        for (var i = 0; i < 200; i++)
        {
            batch.AddRange(Frames.Send(queue, Frames.Bytes($"m{i}")));
            if (i % 50 == 0)
            {
                batch.AddRange(Frames.Bytes("\n\n")); // heart-beats between frames
            }
        }

        batch.AddRange(Frames.Bytes("BEGIN\ntransaction:t\nreceipt:end\n\n\0"));
        await client.SendRawAsync(batch.ToArray());

        var messages = await client.ReceiveMessagesAsync(200);
        Assert.Equal(Enumerable.Range(0, 200).Select(i => $"m{i}"), messages.Select(m => m.BodyText));
        await client.ExpectReceiptAsync("end");
    }

    [Fact]
    public async Task A_frame_split_at_every_position_over_tcp_is_parsed()
    {
        var queue = Unique.Queue();
        await using var client = await Server.ConnectClientAsync(Transport.Tcp);
        await client.SubscribeAsync(queue, "q");
        var frame = Frames.Send(queue, Frames.Bytes("split"), ("k", "v"));

        for (var cut = 1; cut < frame.Length; cut++)
        {
            await client.SendRawAsync(frame.AsMemory(0, cut));
            await client.SendRawAsync(frame.AsMemory(cut));
        }

        var messages = await client.ReceiveMessagesAsync(frame.Length - 1);
        Assert.All(messages, m => Assert.Equal("split", m.BodyText));
        await client.ExpectNothingAsync(200);
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task Crlf_line_ends_are_accepted(Transport transport)
    {
        var queue = Unique.Queue();
        await using var client = await Server.OpenAsync(transport);
        await client.SendRawAsync("CONNECT\r\naccept-version:1.2\r\nhost:/\r\n\r\n\0\r\n");
        Assert.Equal(StompCommand.Connected, (await client.ReceiveAsync()).Command);

        await client.SendRawAsync($"SUBSCRIBE\r\nid:q\r\ndestination:{queue}\r\n\r\n\0SEND\r\ndestination:{queue}\r\nx-h:v\r\n\r\ncrlf\0\r\n");
        var message = await client.ReceiveMessageAsync();
        Assert.Equal("crlf", message.BodyText);
        Assert.Equal("v", message["x-h"]);
    }

    [Theory]
    [InlineData(Transport.Tcp, Transport.Tcp)]
    [InlineData(Transport.Tcp, Transport.WebSocket)]
    [InlineData(Transport.WebSocket, Transport.Tcp)]
    [InlineData(Transport.WebSocket, Transport.WebSocket)]
    public async Task A_1_MiB_body_arrives_byte_identical(Transport producerTransport, Transport consumerTransport)
    {
        var queue = Unique.Queue();
        await using var producer = await Server.ConnectClientAsync(producerTransport);
        await using var consumer = await Server.ConnectClientAsync(consumerTransport);
        await consumer.SubscribeAsync(queue, "q");

        var body = new byte[1024 * 1024];
        new Random(1).NextBytes(body);
        await producer.SendFrameAsync(StompCommand.Send, [("destination", queue), ("content-type", "application/octet-stream")], body);

        var message = await consumer.ReceiveMessageAsync();
        Assert.Equal("1048576", message["content-length"]);
        Assert.Equal("application/octet-stream", message["content-type"]);
        Assert.True(body.AsSpan().SequenceEqual(message.Body), "the 1 MiB body differs");
    }

    [Theory]
    [InlineData(Transport.Tcp, Transport.Tcp)]
    [InlineData(Transport.Tcp, Transport.WebSocket)]
    [InlineData(Transport.WebSocket, Transport.Tcp)]
    [InlineData(Transport.WebSocket, Transport.WebSocket)]
    public async Task Every_byte_value_including_nul_arrives_intact(Transport producerTransport, Transport consumerTransport)
    {
        var topic = Unique.Topic();
        await using var producer = await Server.ConnectClientAsync(producerTransport);
        await using var consumer = await Server.ConnectClientAsync(consumerTransport);
        await consumer.SubscribeAsync(topic, "t");

        var body = Enumerable.Range(0, 256).Select(i => (byte)i).Concat(Enumerable.Range(0, 256).Select(i => (byte)(255 - i))).ToArray();
        await producer.SendFrameAsync(StompCommand.Send, [("destination", topic)], body);

        var message = await consumer.ReceiveMessageAsync();
        Assert.Equal(body, message.Body);
        Assert.Equal("512", message["content-length"]); // a body with NUL needs it
        Assert.Null(message["content-type"]); // none given: none invented
    }

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_body_without_content_length_ends_at_the_first_nul(Transport transport)
    {
        var queue = Unique.Queue();
        await using var client = await Server.ConnectClientAsync(transport);
        await client.SubscribeAsync(queue, "q");

        await client.SendRawAsync($"SEND\ndestination:{queue}\n\nno length here\0");
        var message = await client.ReceiveMessageAsync();
        Assert.Equal("no length here", message.BodyText);
        Assert.Equal("14", message["content-length"]);
    }

    [Fact]
    public async Task A_repeated_header_keeps_its_first_value()
    {
        var queue = Unique.Queue();
        await using var client = await Server.ConnectClientAsync();
        await client.SubscribeAsync(queue, "q");

        await client.SendRawAsync($"SEND\ndestination:{queue}\nx-dup:first\nx-dup:second\n\nd\0");
        Assert.Equal("first", (await client.ReceiveMessageAsync())["x-dup"]);
    }

    [Fact]
    public async Task A_repeated_destination_header_uses_the_first()
    {
        var first = Unique.Queue();
        var second = Unique.Queue();
        await using var client = await Server.ConnectClientAsync();
        await client.SubscribeAsync(first, "first");
        await client.SubscribeAsync(second, "second");

        await client.SendRawAsync($"SEND\ndestination:{first}\ndestination:{second}\n\nd\0");
        var message = await client.ReceiveMessageAsync();
        Assert.Equal("first", message["subscription"]);
        Assert.Equal(first, message["destination"]);
        await client.ExpectNothingAsync(200);
    }
}
