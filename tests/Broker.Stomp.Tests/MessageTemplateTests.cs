using System.Buffers;
using System.Text;
using Broker.Stomp.Tests.TestHelpers;

namespace Broker.Stomp.Tests;

/// <summary>One MESSAGE encoded once and written to many subscribers, each with its own subscription, message-id and ack.</summary>
public sealed class MessageTemplateTests
{
    private static readonly byte[] SendFrame = Sequences.Utf8(
        "SEND\ndestination:/queue/a\ncontent-type:text/plain\nsubscription:forged\nx-custom:1\\c2\nmessage-id:forged\n"
        + "ack:forged\ncontent-length:6\nx-custom:again\n\nhel\0lo\0");

    [Fact]
    public void Writes_one_MESSAGE_per_subscriber_with_its_own_headers_first_and_the_senders_dropped()
    {
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>(SendFrame);
        Assert.True(parser.TryParse(ref input, out var send));
        var template = new StompMessageTemplate(send.Headers, send.Body.ToArray());

        var output = new ArrayBufferWriter<byte>();
        for (var i = 0; i < 5; i++)
        {
            var ack = i % 2 == 0 ? $"ack-{i}" : "";
            template.WriteTo(output, StompVersion.V1_2, Sequences.Utf8($"sub-{i}"), Sequences.Utf8($"msg-{i}"), Sequences.Utf8(ack));
        }

        var frames = Parse.All(new ReadOnlySequence<byte>(output.WrittenMemory), out var left);

        Assert.Equal(0, left);
        Assert.Equal(5, frames.Count);
        for (var i = 0; i < 5; i++)
        {
            List<(string, string)> expected = [($"subscription", $"sub-{i}"), ("message-id", $"msg-{i}")];
            if (i % 2 == 0)
            {
                expected.Add(("ack", $"ack-{i}"));
            }

            expected.AddRange([
                ("destination", "/queue/a"), ("content-type", "text/plain"), ("x-custom", "1:2"), ("x-custom", "again"),
                ("content-length", "6"),
            ]);
            Assert.Equal(StompCommand.Message, frames[i].Command);
            Assert.Equal(expected, frames[i].Headers);
            Assert.Equal("hel\0lo"u8.ToArray(), frames[i].Body);
        }
    }

    [Fact]
    public void Ack_is_omitted_when_empty()
    {
        var template = StompMessageTemplate.Create([new("destination", "/q")], "x"u8.ToArray());
        var output = new ArrayBufferWriter<byte>();

        template.WriteTo(output, StompVersion.V1_2, "0"u8, "m1"u8, ReadOnlySpan<byte>.Empty);

        Assert.Equal("MESSAGE\nsubscription:0\nmessage-id:m1\ndestination:/q\ncontent-length:1\n\nx\0", Encoding.UTF8.GetString(output.WrittenSpan));
    }

    [Fact]
    public void Per_subscriber_headers_are_escaped()
    {
        var template = StompMessageTemplate.Create([new("destination", "/q")], ReadOnlyMemory<byte>.Empty);
        var output = new ArrayBufferWriter<byte>();

        template.WriteTo(output, StompVersion.V1_2, "s:1"u8, "m\n1"u8, "a\\1"u8);

        Assert.Equal(
            "MESSAGE\nsubscription:s\\c1\nmessage-id:m\\n1\nack:a\\\\1\ndestination:/q\ncontent-length:0\n\n\0",
            Encoding.UTF8.GetString(output.WrittenSpan));
        var parsed = Parse.Single(output.WrittenSpan.ToArray());
        Assert.Equal([("subscription", "s:1"), ("message-id", "m\n1"), ("ack", "a\\1"), ("destination", "/q"), ("content-length", "0")], parsed.Headers);
    }

    [Fact]
    public void Shared_block_is_escaped_per_version()
    {
        var template = StompMessageTemplate.Create([new("destination", "/q:a"), new("x", "1\r\n2\\")], "b"u8.ToArray());

        Assert.Equal(
            "MESSAGE\nsubscription:0\nmessage-id:1\ndestination:/q\\ca\nx:1\\r\\n2\\\\\ncontent-length:1\n\nb\0",
            Write(template, StompVersion.V1_2));
        Assert.Equal(
            "MESSAGE\nsubscription:0\nmessage-id:1\ndestination:/q\\ca\nx:1\r\\n2\\\\\ncontent-length:1\n\nb\0",
            Write(template, StompVersion.V1_1));
        Assert.Equal(
            "MESSAGE\nsubscription:0\nmessage-id:1\ndestination:/q:a\nx:1\\r\\n2\\\ncontent-length:1\n\nb\0",
            Write(template, StompVersion.V1_0));

        // And again in another order: each version keeps its own block.
        Assert.Equal(
            "MESSAGE\nsubscription:0\nmessage-id:1\ndestination:/q\\ca\nx:1\\r\\n2\\\\\ncontent-length:1\n\nb\0",
            Write(template, StompVersion.V1_2));
    }

    [Fact]
    public void Shared_block_is_encoded_once_then_reused_without_allocating()
    {
        var template = StompMessageTemplate.Create(
            [new("destination", "/queue/a"), new("content-type", "text/plain"), new("x:escaped", "a\nb")],
            new byte[256]);
        var output = new ArrayBufferWriter<byte>(64 * 1024);
        template.WriteTo(output, StompVersion.V1_2, "sub-0"u8, "msg-0"u8, "ack-0"u8);
        var first = output.WrittenSpan.ToArray();

        long allocated;
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            output.ResetWrittenCount();
            template.WriteTo(output, StompVersion.V1_2, "sub-0"u8, "msg-0"u8, "ack-0"u8);
        }

        allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.Equal(first, output.WrittenSpan.ToArray());
    }

    [Fact]
    public void Encoding_a_new_messages_block_allocates_only_the_block()
    {
        // Once per message: the block is escaped into a writer the thread keeps, so only its copy is allocated (a
        // writer per message doubled that, and was a fifth of the broker's allocation per message).
        IEnumerable<KeyValuePair<string, string>> headers = [new("destination", "/queue/a"), new("content-type", "text/plain"), new("x-trace", "0123456789abcdef0123456789abcdef")];
        Write(StompMessageTemplate.Create(headers, "warm"u8.ToArray()), StompVersion.V1_2);
        var template = StompMessageTemplate.Create(headers, "hello"u8.ToArray());
        var output = new ArrayBufferWriter<byte>(64 * 1024);

        var before = GC.GetAllocatedBytesForCurrentThread();
        template.WriteTo(output, StompVersion.V1_2, "s"u8, "m"u8, ""u8);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        // The block is part of what was written; an array's own header is at most 32 bytes.
        Assert.InRange(allocated, 1, output.WrittenCount + 32);
    }

    [Fact]
    public void Blocks_encoded_one_after_another_on_one_thread_keep_nothing_of_the_one_before()
    {
        // A huge block first (its writer is let go afterwards), then two ordinary ones sharing the kept writer.
        var huge = new string('h', 20_000);
        var big = StompMessageTemplate.Create([new("destination", "/queue/big"), new("x-huge", huge)], "B"u8.ToArray());
        var first = StompMessageTemplate.Create([new("destination", "/queue/first"), new("x-long", "a-rather-longer-value")], "1"u8.ToArray());
        var second = StompMessageTemplate.Create([new("destination", "/q")], "2"u8.ToArray());

        Assert.Equal($"MESSAGE\nsubscription:s\nmessage-id:m\ndestination:/queue/big\nx-huge:{huge}\ncontent-length:1\n\nB\0", Write(big, StompVersion.V1_2, "s", "m"));
        Assert.Equal("MESSAGE\nsubscription:s\nmessage-id:m\ndestination:/queue/first\nx-long:a-rather-longer-value\ncontent-length:1\n\n1\0", Write(first, StompVersion.V1_2, "s", "m"));
        Assert.Equal("MESSAGE\nsubscription:s\nmessage-id:m\ndestination:/q\ncontent-length:1\n\n2\0", Write(second, StompVersion.V1_2, "s", "m"));
    }

    [Fact]
    public void Template_copies_the_headers_so_the_parser_may_move_on()
    {
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>(Sequences.Utf8("SEND\ndestination:/first\n\nA\0SEND\ndestination:/second\n\nB\0"));
        Assert.True(parser.TryParse(ref input, out var first));
        var template = new StompMessageTemplate(first.Headers, first.Body.ToArray());

        Assert.True(parser.TryParse(ref input, out _));

        Assert.Equal("MESSAGE\nsubscription:s\nmessage-id:m\ndestination:/first\ncontent-length:1\n\nA\0", Write(template, StompVersion.V1_2, "s", "m"));
    }

    [Fact]
    public void Body_and_size_are_exposed()
    {
        var template = StompMessageTemplate.Create([new("destination", "/q")], "hello"u8.ToArray());

        Assert.Equal("hello"u8.ToArray(), template.Body.ToArray());
        Assert.True(template.ApproximateSize >= "destination/qhello".Length);
    }

    [Fact]
    public void Many_subscribers_parse_back_concurrently_written_frames()
    {
        // Immutable after construction: writing from several threads gives the same bytes.
        var template = StompMessageTemplate.Create([new("destination", "/topic/t"), new("k", "v")], Sequences.Utf8("payload"));
        var results = new string[64];

        Parallel.For(0, results.Length, i => results[i] = Write(template, StompVersion.V1_2, $"sub-{i}", $"m-{i}"));

        for (var i = 0; i < results.Length; i++)
        {
            var parsed = Parse.Single(results[i]);
            Assert.Equal([("subscription", $"sub-{i}"), ("message-id", $"m-{i}"), ("destination", "/topic/t"), ("k", "v"), ("content-length", "7")], parsed.Headers);
            Assert.Equal("payload", parsed.BodyText);
        }
    }

    private static string Write(StompMessageTemplate template, StompVersion version, string subscription = "0", string messageId = "1")
    {
        var output = new ArrayBufferWriter<byte>();
        template.WriteTo(output, version, Sequences.Utf8(subscription), Sequences.Utf8(messageId), ReadOnlySpan<byte>.Empty);
        return Encoding.UTF8.GetString(output.WrittenSpan);
    }
}
