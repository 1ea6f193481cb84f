using System.Buffers;
using System.Text;
using Broker.Stomp.Tests.TestHelpers;

namespace Broker.Stomp.Tests;

/// <summary>
/// Size limits are enforced before the bytes are awaited or buffered, at their exact boundaries, and parsing does
/// not allocate: no allocation proportional to a claimed size, and none at all in the steady state.
/// </summary>
public sealed class LimitTests
{
    private static readonly StompParserLimits Small = new()
    {
        MaxFrameBytes = 1000,
        MaxBodyBytes = 10,
        MaxHeaders = 3,
        MaxHeaderLineBytes = 32,
    };

    private static readonly StompParserLimits ShortLines = new() { MaxHeaderLineBytes = 16 };

    [Fact]
    public void Huge_content_length_fails_at_once_without_allocating_for_it()
    {
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>(Sequences.Utf8("SEND\ndestination:/queue/a\ncontent-length:1073741824\n\n"));
        StompProtocolException? error = null;

        var before = GC.GetAllocatedBytesForCurrentThread();
        var parsed = false;
        try
        {
            parsed = parser.TryParse(ref input, out _);
        }
        catch (StompProtocolException e)
        {
            error = e;
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.False(parsed);
        Assert.NotNull(error);
        Assert.Equal(StompErrorKind.BodyTooLarge, error.Kind);
        Assert.Equal("body too large: the limit is 4194304 bytes", error.Message);
        Assert.True(allocated < 64 * 1024, $"allocated {allocated} bytes");
    }

    [Fact]
    public void Huge_content_length_under_a_large_body_limit_fails_on_the_frame_limit_without_allocating_for_it()
    {
        using var parser = new StompParser(new StompParserLimits { MaxBodyBytes = int.MaxValue, MaxFrameBytes = 1024 * 1024 });
        var input = new ReadOnlySequence<byte>(Sequences.Utf8("MESSAGE\ndestination:/queue/a\ncontent-length:2000000000\n\n"));
        StompProtocolException? error = null;

        var before = GC.GetAllocatedBytesForCurrentThread();
        var parsed = false;
        try
        {
            parsed = parser.TryParse(ref input, out _);
        }
        catch (StompProtocolException e)
        {
            error = e;
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.False(parsed);
        Assert.NotNull(error);
        Assert.Equal(StompErrorKind.FrameTooLarge, error.Kind);
        Assert.Equal("frame too large: the limit is 1048576 bytes", error.Message);
        Assert.True(allocated < 64 * 1024, $"allocated {allocated} bytes");
    }

    [Fact]
    public void Steady_state_parse_of_a_typical_SEND_allocates_nothing()
    {
        var data = TypicalSend();
        using var parser = new StompParser();

        var allocated = MeasureParses(parser, new ReadOnlySequence<byte>(data));

        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Steady_state_parse_of_a_SEND_split_inside_a_header_allocates_nothing()
    {
        // The split header line is copied into the parser's pooled line buffer, not a new array.
        var data = TypicalSend();
        using var parser = new StompParser();

        var allocated = MeasureParses(parser, Sequences.SplitAt(data, 20));

        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Steady_state_parse_in_one_byte_segments_allocates_nothing()
    {
        var data = TypicalSend();
        using var parser = new StompParser();

        var allocated = MeasureParses(parser, Sequences.OneByteSegments(data), iterations: 200);

        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Steady_state_parse_with_escaped_headers_allocates_nothing()
    {
        var data = Sequences.Utf8("MESSAGE\nsubscription:sub\\c1\nmessage-id:m\\\\1\ndestination:/queue/a\\nb\nack:a\\r\n\nhello\0");
        using var parser = new StompParser();

        var allocated = MeasureParses(parser, new ReadOnlySequence<byte>(data));

        Assert.Equal(0, allocated);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Slow_feed_of_a_1_MiB_body_in_1_KiB_chunks_parses(bool withContentLength)
    {
        var body = new byte[1024 * 1024];
        new Random(1).NextBytes(body);
        if (!withContentLength)
        {
            body.AsSpan().Replace((byte)0, (byte)1);
        }

        var head = Sequences.Utf8("SEND\ndestination:/queue/big\n" + (withContentLength ? $"content-length:{body.Length}\n" : "") + "\n");
        byte[] data = [.. head, .. body, 0];
        using var parser = new StompParser();

        StompFrame frame = default;
        var parsed = false;
        var calls = 0;
        for (var end = Math.Min(1024, data.Length); !parsed; end = Math.Min(end + 1024, data.Length))
        {
            var input = new ReadOnlySequence<byte>(data, 0, end);
            parsed = parser.TryParse(ref input, out frame);
            calls++;
            Assert.True(parsed == (end == data.Length), $"parsed={parsed} at {end} of {data.Length}");
        }

        Assert.True(calls > 1000);
        Assert.Equal(body.Length, frame.Body.Length);
        Assert.True(frame.Body.ToArray().AsSpan().SequenceEqual(body));
    }

    [Fact]
    public void Slow_feed_of_a_1_MiB_body_as_appended_segments_parses()
    {
        // The way a Pipe delivers it: the same start, one more 1 KiB segment each time.
        var body = new byte[1024 * 1024];
        new Random(2).NextBytes(body);
        byte[] data = [.. Sequences.Utf8($"MESSAGE\ndestination:/queue/big\ncontent-length:{body.Length}\n\n"), .. body, 0];
        var chunks = new List<ReadOnlyMemory<byte>>();
        for (var at = 0; at < data.Length; at += 1024)
        {
            chunks.Add(data.AsMemory(at, Math.Min(1024, data.Length - at)));
        }

        var whole = Sequences.FromPieces(chunks);
        using var parser = new StompParser();
        for (var count = 1; count < chunks.Count; count++)
        {
            var partial = whole.Slice(0, whole.GetPosition(count * 1024L));
            Assert.False(parser.TryParse(ref partial, out _));
        }

        Assert.True(parser.TryParse(ref whole, out var frame));
        Assert.True(whole.IsEmpty);
        Assert.True(frame.Body.ToArray().AsSpan().SequenceEqual(body));
    }

    [Fact]
    public void Body_of_exactly_the_body_limit_is_allowed()
    {
        var withLength = Parse.All(new ReadOnlySequence<byte>(Sequences.Utf8("SEND\ncontent-length:10\n\n0123456789\0")), out _, limits: Small);
        var withoutLength = Parse.All(new ReadOnlySequence<byte>(Sequences.Utf8("SEND\n\n0123456789\0")), out _, limits: Small);

        Assert.Equal("0123456789", withLength.Single().BodyText);
        Assert.Equal("0123456789", withoutLength.Single().BodyText);
    }

    [Fact]
    public void Body_too_large_with_content_length()
    {
        var error = Parse.Error("SEND\ncontent-length:11\n\n", limits: Small);

        Assert.Equal(StompErrorKind.BodyTooLarge, error.Kind);
        Assert.Equal("body too large: the limit is 10 bytes", error.Message);
        Assert.True(error.IsLimit);
    }

    [Fact]
    public void Body_too_large_without_content_length_is_found_before_the_NUL_arrives()
    {
        var error = Parse.Error("SEND\n\n0123456789A", limits: Small);

        Assert.Equal(StompErrorKind.BodyTooLarge, error.Kind);
        Assert.Equal("body too large: the limit is 10 bytes", error.Message);
    }

    [Fact]
    public void Body_too_large_without_content_length_in_one_buffer()
    {
        var error = Parse.Error("SEND\n\n0123456789A\0", limits: Small);

        Assert.Equal(StompErrorKind.BodyTooLarge, error.Kind);
    }

    [Fact]
    public void Body_too_large_fed_one_byte_at_a_time()
    {
        var data = Sequences.Utf8("SEND\n\n0123456789A\0");

        var error = Assert.Throws<StompProtocolException>(() => Parse.Growing(data, out _, limits: Small));

        Assert.Equal(StompErrorKind.BodyTooLarge, error.Kind);
    }

    [Fact]
    public void Frame_of_exactly_the_frame_limit_is_allowed()
    {
        var frame = Sequences.Utf8("SEND\ndestination:/q\n\n" + new string('x', 40) + "\0");
        var limits = new StompParserLimits { MaxFrameBytes = frame.Length };

        var frames = Parse.All(new ReadOnlySequence<byte>([.. frame, .. "\r\n\n"u8]), out var left, limits: limits);

        Assert.Equal(0, left);
        Assert.Equal(40, frames.Single().Body.Length);
        Assert.Single(Parse.Growing(frame, out _, limits: limits));
    }

    [Theory]
    [InlineData("SEND\ndestination:/q\n\n{0}\0")]
    [InlineData("SEND\ndestination:/q\ncontent-length:41\n\n{0}\0")]
    [InlineData("SEND\ndestination:/q\n\n{0}")]
    public void Frame_too_large_by_its_body(string template)
    {
        var limits = new StompParserLimits { MaxFrameBytes = 62 };

        var error = Parse.Error(string.Format(System.Globalization.CultureInfo.InvariantCulture, template, new string('x', 41)), limits: limits);

        Assert.Equal(StompErrorKind.FrameTooLarge, error.Kind);
        Assert.Equal("frame too large: the limit is 62 bytes", error.Message);
        Assert.True(error.IsLimit);
    }

    [Theory]
    [InlineData("ACK\nid:12\n\n\0")]
    [InlineData("ACK\r\nid:1\r\n\r\n\0")]
    [InlineData("DISCONNECT\nreceipt:77\n\0")]
    [InlineData("UNSUBSCRIBE\nid:0\ncontent-length:0\n\n\0")]
    [InlineData("SEND\ndestination:/q\n\n\0")]
    public void Frame_without_a_body_is_held_to_the_frame_limit_exactly(string text)
    {
        var frame = Sequences.Utf8(text);
        var exact = new StompParserLimits { MaxFrameBytes = frame.Length };
        var oneLess = new StompParserLimits { MaxFrameBytes = frame.Length - 1 };

        Assert.Single(Parse.All(new ReadOnlySequence<byte>(frame), out _, limits: exact));
        Assert.Single(Parse.Growing(frame, out _, limits: exact));
        var whole = Parse.Error(frame, limits: oneLess);
        var growing = Assert.Throws<StompProtocolException>(() => Parse.Growing(frame, out _, limits: oneLess));

        Assert.Equal(StompErrorKind.FrameTooLarge, whole.Kind);
        Assert.Equal(StompErrorKind.FrameTooLarge, growing.Kind);
        Assert.Equal($"frame too large: the limit is {frame.Length - 1} bytes", whole.Message);
    }

    [Fact]
    public void Frame_too_large_by_its_headers_before_they_end()
    {
        var limits = new StompParserLimits { MaxFrameBytes = 64 };
        var headers = string.Concat(Enumerable.Range(0, 20).Select(i => $"h{i}:v\n"));

        var error = Parse.Error("SEND\n" + headers, limits: limits);

        Assert.Equal(StompErrorKind.FrameTooLarge, error.Kind);
        Assert.Equal("frame too large: the limit is 64 bytes", error.Message);
    }

    [Fact]
    public void Frame_too_large_by_its_headers_fed_one_byte_at_a_time()
    {
        var limits = new StompParserLimits { MaxFrameBytes = 64 };
        var data = Sequences.Utf8("SEND\n" + string.Concat(Enumerable.Range(0, 20).Select(i => $"h{i}:v\n")));

        var error = Assert.Throws<StompProtocolException>(() => Parse.Growing(data, out _, limits: limits));

        Assert.Equal(StompErrorKind.FrameTooLarge, error.Kind);
    }

    [Fact]
    public void Headers_up_to_the_header_limit_are_allowed()
    {
        var frames = Parse.All(new ReadOnlySequence<byte>(Sequences.Utf8("SEND\na:1\na:2\nb:3\n\n\0")), out _, limits: Small);

        Assert.Equal(3, frames.Single().Headers.Count);
    }

    [Fact]
    public void Too_many_headers()
    {
        var error = Parse.Error("SEND\na:1\na:2\nb:3\nc:4\n\n\0", limits: Small);

        Assert.Equal(StompErrorKind.TooManyHeaders, error.Kind);
        Assert.Equal("too many headers: the limit is 3", error.Message);
        Assert.True(error.IsLimit);
    }

    [Fact]
    public void Too_many_headers_is_found_before_the_frame_ends()
    {
        using var parser = new StompParser(Small);
        var input = new ReadOnlySequence<byte>(Sequences.Utf8("SEND\na:1\na:2\nb:3\nc:4\n"));

        var error = Assert.Throws<StompProtocolException>(() => parser.TryParse(ref input, out _));

        Assert.Equal(StompErrorKind.TooManyHeaders, error.Kind);
    }

    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    public void Header_line_of_exactly_the_line_limit_is_allowed(string eol)
    {
        var line = "abcdefgh:1234567"; // 16 bytes
        var data = Sequences.Utf8("SEND" + eol + line + eol + eol + "\0");

        var whole = Parse.All(new ReadOnlySequence<byte>(data), out _, limits: ShortLines);
        var segments = Parse.All(Sequences.OneByteSegments(data), out _, limits: ShortLines);
        var growing = Parse.Growing(data, out _, limits: ShortLines);

        Assert.Equal([("abcdefgh", "1234567")], whole.Single().Headers);
        Assert.Equal([("abcdefgh", "1234567")], segments.Single().Headers);
        Assert.Equal([("abcdefgh", "1234567")], growing.Single().Headers);
    }

    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    public void Header_line_too_long(string eol)
    {
        var data = Sequences.Utf8("SEND" + eol + "abcdefgh:12345678" + eol + eol + "\0"); // 17 bytes

        var whole = Parse.Error(data, limits: ShortLines);
        var segments = Assert.Throws<StompProtocolException>(() => Parse.All(Sequences.OneByteSegments(data), out _, limits: ShortLines));
        var growing = Assert.Throws<StompProtocolException>(() => Parse.Growing(data, out _, limits: ShortLines));

        foreach (var error in new[] { whole, segments, growing })
        {
            Assert.Equal(StompErrorKind.HeaderLineTooLong, error.Kind);
            Assert.Equal("header line too long: the limit is 16 bytes", error.Message);
            Assert.True(error.IsLimit);
        }
    }

    [Fact]
    public void Header_line_too_long_is_found_before_its_EOL_arrives()
    {
        foreach (var input in new[]
                 {
                     new ReadOnlySequence<byte>(Sequences.Utf8("SEND\n" + new string('a', 100))),
                     Sequences.OneByteSegments(Sequences.Utf8("SEND\n" + new string('a', 100))),
                     Sequences.SplitAt(Sequences.Utf8("SEND\n" + new string('a', 100)), 10),
                 })
        {
            using var parser = new StompParser(ShortLines);
            var copy = input;

            var error = Assert.Throws<StompProtocolException>(() => parser.TryParse(ref copy, out _));

            Assert.Equal(StompErrorKind.HeaderLineTooLong, error.Kind);
        }
    }

    [Fact]
    public void Partial_header_line_within_the_limit_waits()
    {
        // 17 bytes without an EOL may still be 16 bytes + CR.
        using var parser = new StompParser(ShortLines);
        var input = new ReadOnlySequence<byte>(Sequences.Utf8("SEND\nabcdefgh:1234567\r"));

        Assert.False(parser.TryParse(ref input, out _));
    }

    [Fact]
    public void Command_line_too_long()
    {
        var error = Parse.Error(new string('S', 17) + "\n\n\0", limits: ShortLines);

        Assert.Equal(StompErrorKind.HeaderLineTooLong, error.Kind);
        Assert.Equal("header line too long: the limit is 16 bytes", error.Message);
    }

    [Fact]
    public void Command_line_too_long_is_found_before_its_EOL_arrives()
    {
        using var parser = new StompParser(ShortLines);
        var input = new ReadOnlySequence<byte>(new byte[10_000]);

        var error = Assert.Throws<StompProtocolException>(() => parser.TryParse(ref input, out _));

        Assert.Equal(StompErrorKind.HeaderLineTooLong, error.Kind);
    }

    [Fact]
    public void Limits_can_be_tightened_between_frames()
    {
        using var parser = new StompParser();
        var data = Sequences.Utf8("SEND\na:1\nb:2\nc:3\nd:4\n\n\0");
        var first = new ReadOnlySequence<byte>(data);
        Assert.True(parser.TryParse(ref first, out _));

        parser.Limits = Small;
        var second = new ReadOnlySequence<byte>(data);

        var error = Assert.Throws<StompProtocolException>(() => parser.TryParse(ref second, out _));
        Assert.Equal(StompErrorKind.TooManyHeaders, error.Kind);
    }

    [Fact]
    public void Limits_may_be_as_large_as_int_allows()
    {
        var limits = new StompParserLimits
        {
            MaxFrameBytes = int.MaxValue,
            MaxBodyBytes = int.MaxValue,
            MaxHeaders = int.MaxValue,
            MaxHeaderLineBytes = int.MaxValue,
        };
        var data = Sequences.Utf8("SEND\ndestination:/queue/a\ncontent-length:3\n\nabc\0");

        var whole = Parse.All(new ReadOnlySequence<byte>(data), out var left, limits: limits);
        var segments = Parse.All(Sequences.OneByteSegments(data), out var segmentsLeft, limits: limits);

        Assert.Equal(0, left);
        Assert.Equal(0, segmentsLeft);
        Assert.Equal("abc", whole.Single().BodyText);
        Assert.Equal("abc", segments.Single().BodyText);
    }

    [Theory]
    [InlineData(0, 1, 1, 1)]
    [InlineData(1, 0, 1, 1)]
    [InlineData(1, 1, 0, 1)]
    [InlineData(1, 1, 1, -1)]
    public void Limits_must_be_positive(int frame, int body, int headers, int line)
    {
        var limits = new StompParserLimits { MaxFrameBytes = frame, MaxBodyBytes = body, MaxHeaders = headers, MaxHeaderLineBytes = line };
        using var parser = new StompParser();

        Assert.Throws<ArgumentOutOfRangeException>(() => new StompParser(limits));
        Assert.Throws<ArgumentOutOfRangeException>(() => parser.Limits = limits);
        Assert.Throws<ArgumentNullException>(() => parser.Limits = null!);
    }

    private static byte[] TypicalSend()
    {
        var body = new string('b', 100);
        return Encoding.UTF8.GetBytes(
            "SEND\ndestination:/queue/orders\ncontent-type:text/plain\nreceipt:r-1234\ncontent-length:100\n\n" + body + "\0\n");
    }

    // Parses the same input over and over: warm-up first, then the allocations of `iterations` parses.
    private static long MeasureParses(StompParser parser, ReadOnlySequence<byte> data, int iterations = 1000)
    {
        long sink = 0;
        for (var i = 0; i < 2000; i++)
        {
            sink += ParseOnce(parser, data);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < iterations; i++)
        {
            sink += ParseOnce(parser, data);
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(sink > 0);
        return allocated;
    }

    private static long ParseOnce(StompParser parser, ReadOnlySequence<byte> data)
    {
        var input = data;
        if (!parser.TryParse(ref input, out var frame) || !input.IsEmpty)
        {
            Assert.Fail("the frame did not parse whole");
        }

        frame.Headers.TryGetValue("destination"u8, out var destination);
        return frame.Body.Length + frame.Headers.Count + destination.Length;
    }
}
