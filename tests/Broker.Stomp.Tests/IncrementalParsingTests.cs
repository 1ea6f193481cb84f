using System.Buffers;
using Broker.Stomp.Tests.TestHelpers;

namespace Broker.Stomp.Tests;

/// <summary>
/// Frames that arrive in pieces (Kestrel HttpParserTests style): every proper prefix is incomplete and consumes
/// nothing, every segmentation parses the same, the parser resumes where it stopped, and EOLs between frames are
/// heart-beats.
/// </summary>
public sealed class IncrementalParsingTests
{
    [Theory]
    [MemberData(nameof(SpecExamples.Names), MemberType = typeof(SpecExamples))]
    public void Every_proper_prefix_is_incomplete_and_consumes_nothing(string name, bool crLf)
    {
        var data = SpecExamples.Get(name, crLf).Bytes;

        for (var length = 0; length < data.Length; length++)
        {
            using var parser = new StompParser();
            var input = new ReadOnlySequence<byte>(data, 0, length);
            var before = input;

            Assert.False(parser.TryParse(ref input, out _), $"prefix of {length} bytes parsed");
            Assert.Equal(before.Start, input.Start);
            Assert.Equal(before.Length, input.Length);
        }
    }

    [Theory]
    [MemberData(nameof(SpecExamples.Names), MemberType = typeof(SpecExamples))]
    public void Every_proper_prefix_in_one_byte_segments_is_incomplete(string name, bool crLf)
    {
        var data = SpecExamples.Get(name, crLf).Bytes;

        for (var length = 1; length < data.Length; length++)
        {
            using var parser = new StompParser();
            var input = Sequences.OneByteSegments(data[..length]);

            Assert.False(parser.TryParse(ref input, out _), $"prefix of {length} bytes parsed");
            Assert.Equal(length, input.Length);
        }
    }

    [Theory]
    [MemberData(nameof(SpecExamples.Names), MemberType = typeof(SpecExamples))]
    public void Same_parser_resumes_over_growing_prefixes_then_parses_the_frame(string name, bool crLf)
    {
        var example = SpecExamples.Get(name, crLf);

        var frames = Parse.Growing(example.Bytes, out var left);

        Assert.Equal(0, left);
        Assert.Single(frames);
        Assert.Null(ParsedFrame.Difference(example.Expected, frames[0]));
    }

    [Theory]
    [MemberData(nameof(SpecExamples.Names), MemberType = typeof(SpecExamples))]
    public void Split_at_every_point_into_two_segments_parses_the_same(string name, bool crLf)
    {
        var example = SpecExamples.Get(name, crLf);
        var data = example.Bytes;

        for (var at = 0; at <= data.Length; at++)
        {
            var frames = Parse.All(Sequences.SplitAt(data, at), out var left);

            Assert.Equal(0, left);
            Assert.Single(frames);
            Assert.True(ParsedFrame.Difference(example.Expected, frames[0]) is null, $"split at {at}: {ParsedFrame.Difference(example.Expected, frames[0])}");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void One_byte_segments_with_and_without_empty_segments_parse_the_same(bool withEmptySegments)
    {
        var examples = SpecExamples.All;
        var data = examples.SelectMany(e => e.Bytes).ToArray();

        var frames = Parse.All(Sequences.OneByteSegments(data, withEmptySegments), out var left);

        Assert.Equal(0, left);
        Assert.Null(ParsedFrame.Difference(examples.Select(e => e.Expected).ToList(), frames));
    }

    [Fact]
    public void Many_frames_in_one_buffer()
    {
        var examples = SpecExamples.All;
        var data = examples.SelectMany(e => e.Bytes).ToArray();

        var frames = Parse.All(new ReadOnlySequence<byte>(data), out var left);

        Assert.Equal(0, left);
        Assert.Null(ParsedFrame.Difference(examples.Select(e => e.Expected).ToList(), frames));
    }

    [Fact]
    public void Many_frames_fed_one_byte_at_a_time()
    {
        var examples = SpecExamples.All;
        var data = examples.SelectMany(e => e.Bytes).ToArray();

        var frames = Parse.Growing(data, out var left);

        Assert.Equal(0, left);
        Assert.Null(ParsedFrame.Difference(examples.Select(e => e.Expected).ToList(), frames));
    }

    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    [InlineData("\n\n\r\n\n")]
    public void EOLs_before_a_frame_are_one_heart_beat(string eols)
    {
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>(Sequences.Utf8(eols + "ACK\nid:1\n\n\0"));

        Assert.True(parser.TryParse(ref input, out var heartBeat));
        Assert.Equal(StompCommand.HeartBeat, heartBeat.Command);
        Assert.True(heartBeat.IsHeartBeat);
        Assert.Equal(0, heartBeat.Headers.Count);
        Assert.True(heartBeat.Body.IsEmpty);
        Assert.Equal("ACK\nid:1\n\n\0"u8.Length, (int)input.Length);

        Assert.True(parser.TryParse(ref input, out var frame));
        Assert.Equal(StompCommand.Ack, frame.Command);
        Assert.True(input.IsEmpty);
    }

    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    [InlineData("\r\n\n\r\n")]
    public void EOLs_alone_are_a_heart_beat(string eols)
    {
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>(Sequences.Utf8(eols));

        Assert.True(parser.TryParse(ref input, out var frame));

        Assert.Equal(StompCommand.HeartBeat, frame.Command);
        Assert.True(input.IsEmpty);
    }

    [Fact]
    public void EOLs_arriving_between_frames_are_reported_as_heart_beats()
    {
        using var parser = new StompParser();
        var first = new ReadOnlySequence<byte>(Sequences.Utf8("SEND\ndestination:/q\n\nx\0"));
        Assert.True(parser.TryParse(ref first, out var send));
        Assert.Equal(StompCommand.Send, send.Command);

        var later = new ReadOnlySequence<byte>(Sequences.Utf8("\r\n"));
        Assert.True(parser.TryParse(ref later, out var heartBeat));
        Assert.Equal(StompCommand.HeartBeat, heartBeat.Command);
        Assert.True(later.IsEmpty);

        var next = new ReadOnlySequence<byte>(Sequences.Utf8("\nACK\nid:1\n\n\0"));
        Assert.True(parser.TryParse(ref next, out heartBeat));
        Assert.Equal(StompCommand.HeartBeat, heartBeat.Command);
        Assert.True(parser.TryParse(ref next, out var ack));
        Assert.Equal(StompCommand.Ack, ack.Command);
    }

    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    [InlineData("\n\r\n\n\n")]
    public void EOLs_right_after_a_frame_are_consumed_with_it(string eols)
    {
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>(Sequences.Utf8("SEND\ndestination:/q\n\nx\0" + eols + "ACK\nid:1\n\n\0"));

        Assert.True(parser.TryParse(ref input, out var send));
        Assert.Equal(StompCommand.Send, send.Command);
        Assert.Equal(Sequences.Utf8("ACK\nid:1\n\n\0"), input.ToArray());

        Assert.True(parser.TryParse(ref input, out var ack));
        Assert.Equal(StompCommand.Ack, ack.Command);
    }

    [Fact]
    public void Frames_with_heart_beats_between_them_in_one_buffer()
    {
        var data = Sequences.Utf8("\r\nBEGIN\ntransaction:t\n\n\0\n\r\n\nSEND\ndestination:/q\ntransaction:t\n\nhi\0\r\n\r\nCOMMIT\ntransaction:t\n\n\0\n");

        var frames = Parse.All(new ReadOnlySequence<byte>(data), out var left);

        Assert.Equal(0, left);
        Assert.Equal([StompCommand.HeartBeat, StompCommand.Begin, StompCommand.Send, StompCommand.Commit], frames.Select(f => f.Command));
        Assert.Equal("hi", frames[2].BodyText);
    }

    [Fact]
    public void Frames_with_heart_beats_between_them_fed_one_byte_at_a_time()
    {
        var data = Sequences.Utf8("\r\nBEGIN\ntransaction:t\n\n\0\n\r\n\nSEND\ndestination:/q\ntransaction:t\n\nhi\0\r\n\r\nCOMMIT\ntransaction:t\n\n\0\n");

        var frames = Parse.Growing(data, out var left);

        Assert.Equal(0, left);
        // Byte by byte, every EOL after a NUL arrives on its own, so each run of EOLs is reported.
        Assert.Equal(
            [StompCommand.HeartBeat, StompCommand.Begin, StompCommand.HeartBeat, StompCommand.HeartBeat, StompCommand.HeartBeat,
             StompCommand.Send, StompCommand.HeartBeat, StompCommand.HeartBeat, StompCommand.Commit, StompCommand.HeartBeat],
            frames.Select(f => f.Command));
    }

    [Fact]
    public void Lone_CR_at_the_end_of_the_buffer_is_incomplete()
    {
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>("\r"u8.ToArray());

        Assert.False(parser.TryParse(ref input, out _));
        Assert.Equal(1, input.Length);

        var completed = new ReadOnlySequence<byte>("\r\n"u8.ToArray());
        Assert.True(parser.TryParse(ref completed, out var heartBeat));
        Assert.True(heartBeat.IsHeartBeat);
        Assert.True(completed.IsEmpty);
    }

    [Fact]
    public void Lone_CR_after_EOLs_is_left_for_the_next_call()
    {
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>("\n\r\n\r"u8.ToArray());

        Assert.True(parser.TryParse(ref input, out var heartBeat));
        Assert.True(heartBeat.IsHeartBeat);
        Assert.Equal("\r"u8.ToArray(), input.ToArray());
        Assert.False(parser.TryParse(ref input, out _));
        Assert.Equal(1, input.Length);
    }

    [Fact]
    public void Lone_CR_after_a_frame_is_left_for_the_next_call()
    {
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>(Sequences.Utf8("COMMIT\ntransaction:t\n\n\0\r"));

        Assert.True(parser.TryParse(ref input, out var commit));
        Assert.Equal(StompCommand.Commit, commit.Command);
        Assert.Equal("\r"u8.ToArray(), input.ToArray());

        Assert.False(parser.TryParse(ref input, out _));
        Assert.Equal(1, input.Length);
    }

    [Fact]
    public void Header_line_ending_with_CR_split_from_its_LF()
    {
        var data = Sequences.Utf8("SEND\r\ndestination:/q\r\n\r\nbody\0");
        var cr = Array.IndexOf(data, (byte)'\r', 10);

        var frames = Parse.All(Sequences.SplitAt(data, cr + 1), out var left);

        Assert.Equal(0, left);
        Assert.Equal([("destination", "/q")], frames.Single().Headers);
    }

    [Fact]
    public void Resumed_body_without_content_length_is_searched_once()
    {
        // The NUL search resumes where it stopped: feed a body in pieces and check the result, not the work.
        var head = Sequences.Utf8("SEND\ndestination:/q\n\n");
        var body = Enumerable.Range(0, 5000).Select(i => (byte)('a' + (i % 26))).ToArray();
        byte[] data = [.. head, .. body, 0];
        using var parser = new StompParser();

        for (var end = head.Length; end < data.Length; end += 97)
        {
            var partial = new ReadOnlySequence<byte>(data, 0, end);
            Assert.False(parser.TryParse(ref partial, out _));
        }

        var input = new ReadOnlySequence<byte>(data);
        Assert.True(parser.TryParse(ref input, out var frame));
        Assert.Equal(body, frame.Body.ToArray());
    }

    [Fact]
    public void Resumed_frame_may_arrive_in_a_different_segmentation()
    {
        // The parser remembers offsets from the frame's start, not segments: the caller's buffer may be re-chunked.
        var data = Sequences.Utf8("MESSAGE\nsubscription:0\nmessage-id:1\ndestination:/q\ncontent-length:4\n\nab\0c\0");
        using var parser = new StompParser();
        var random = new Random(7);

        for (var end = 1; end < data.Length; end++)
        {
            var partial = Sequences.RandomPieces(data[..end], random, 5);
            Assert.False(parser.TryParse(ref partial, out _), $"prefix {end}");
        }

        var input = Sequences.RandomPieces(data, random, 5);
        Assert.True(parser.TryParse(ref input, out var frame));
        Assert.Equal("ab\0c"u8.ToArray(), frame.Body.ToArray());
        Assert.Equal("1", frame.Headers.GetString("message-id"));
    }
}
