using System.Buffers;
using System.Runtime.InteropServices;
using Broker.Stomp.Tests.TestHelpers;

namespace Broker.Stomp.Tests;

/// <summary>Well-formed frames: every example of the STOMP 1.2 specification, and the frame grammar's corners.</summary>
public sealed class ParserTests
{
    [Theory]
    [MemberData(nameof(SpecExamples.Names), MemberType = typeof(SpecExamples))]
    public void Spec_example_parses_to_its_command_headers_and_body(string name, bool crLf)
    {
        var example = SpecExamples.Get(name, crLf);

        var parsed = Parse.Single(example.Bytes);

        Assert.Null(ParsedFrame.Difference(example.Expected, parsed));
    }

    [Theory]
    [MemberData(nameof(SpecExamples.Names), MemberType = typeof(SpecExamples))]
    public void Spec_example_parses_the_same_in_one_byte_segments(string name, bool crLf)
    {
        var example = SpecExamples.Get(name, crLf);

        var frames = Parse.All(Sequences.OneByteSegments(example.Bytes), out var left);

        Assert.Equal(0, left);
        Assert.Single(frames);
        Assert.Null(ParsedFrame.Difference(example.Expected, frames[0]));
    }

    [Fact]
    public void Spec_error_example_verbatim_reads_all_171_octets_its_content_length_gives()
    {
        // The specification's ERROR example says content-length:171 but its body is 170 octets. A parser MUST read
        // content-length octets whatever they are, so the NUL is body octet 171 and the frame is not over yet.
        var verbatim = Sequences.Utf8(
            "ERROR\nreceipt-id:message-12345\ncontent-type:text/plain\ncontent-length:171\nmessage: malformed frame received\n\n"
            + SpecExamples.ErrorBody + "\0");
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>(verbatim);

        Assert.False(parser.TryParse(ref input, out _));
        Assert.Equal(verbatim.Length, input.Length);

        var completed = new ReadOnlySequence<byte>([.. verbatim, 0]);
        Assert.True(parser.TryParse(ref completed, out var frame));
        Assert.True(completed.IsEmpty);
        Assert.Equal(171, frame.Body.Length);
        Assert.Equal([.. Sequences.Utf8(SpecExamples.ErrorBody), 0], frame.Body.ToArray());
        Assert.Equal(" malformed frame received", frame.Headers.GetString("message"));
    }

    [Theory]
    [InlineData("CONNECT", StompCommand.Connect)]
    [InlineData("STOMP", StompCommand.Stomp)]
    [InlineData("SEND", StompCommand.Send)]
    [InlineData("SUBSCRIBE", StompCommand.Subscribe)]
    [InlineData("UNSUBSCRIBE", StompCommand.Unsubscribe)]
    [InlineData("ACK", StompCommand.Ack)]
    [InlineData("NACK", StompCommand.Nack)]
    [InlineData("BEGIN", StompCommand.Begin)]
    [InlineData("COMMIT", StompCommand.Commit)]
    [InlineData("ABORT", StompCommand.Abort)]
    [InlineData("DISCONNECT", StompCommand.Disconnect)]
    [InlineData("CONNECTED", StompCommand.Connected)]
    [InlineData("MESSAGE", StompCommand.Message)]
    [InlineData("RECEIPT", StompCommand.Receipt)]
    [InlineData("ERROR", StompCommand.Error)]
    public void Every_command_is_recognised(string name, StompCommand command)
    {
        var parsed = Parse.Single(name + "\n\n\0");

        Assert.Equal(command, parsed.Command);
        Assert.Empty(parsed.Headers);
        Assert.Empty(parsed.Body);
    }

    [Theory]
    [InlineData(StompCommand.Connect, false, false, true)]
    [InlineData(StompCommand.Stomp, false, false, true)]
    [InlineData(StompCommand.Send, true, true, true)]
    [InlineData(StompCommand.Subscribe, false, true, true)]
    [InlineData(StompCommand.Disconnect, false, true, true)]
    [InlineData(StompCommand.Connected, false, false, false)]
    [InlineData(StompCommand.Message, true, true, false)]
    [InlineData(StompCommand.Receipt, false, true, false)]
    [InlineData(StompCommand.Error, true, true, false)]
    public void Command_facts(StompCommand command, bool mayHaveBody, bool usesEscaping, bool isClientCommand)
    {
        Assert.Equal(mayHaveBody, StompCommands.MayHaveBody(command));
        Assert.Equal(usesEscaping, StompCommands.UsesEscaping(command));
        Assert.Equal(isClientCommand, StompCommands.IsClientCommand(command));
        Assert.True(StompCommands.TryParse(StompCommands.GetName(command), out var parsed));
        Assert.Equal(command, parsed);
    }

    [Fact]
    public void Heart_beat_has_no_command_name()
    {
        Assert.True(StompCommands.GetName(StompCommand.HeartBeat).IsEmpty);
        Assert.False(StompCommands.TryParse(ReadOnlySpan<byte>.Empty, out _));
    }

    [Fact]
    public void Header_lookup_by_a_long_string_name()
    {
        var name = new string('n', 300);
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>(Sequences.Utf8($"SEND\n{name}:long\nshort:é\n\n\0"));

        Assert.True(parser.TryParse(ref input, out var frame));

        Assert.Equal("long", frame.Headers.GetString(name));
        Assert.Equal("é", frame.Headers.GetString("short"));
        Assert.Null(frame.Headers.GetString(name + "x"));
    }

    [Fact]
    public void Content_length_body_may_contain_NUL_and_any_octet()
    {
        byte[] body = [0, 1, 0, 0xFF, (byte)'\n', (byte)'\r', 0];
        byte[] data = [.. Sequences.Utf8("MESSAGE\ncontent-length:7\n\n"), .. body, 0];

        var parsed = Parse.Single(data);

        Assert.Equal(body, parsed.Body);
    }

    [Fact]
    public void Body_without_content_length_ends_at_the_first_NUL()
    {
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>(Sequences.Utf8("SEND\ndestination:/q\n\nab\0cd\0"));

        Assert.True(parser.TryParse(ref input, out var frame));

        Assert.Equal("ab"u8.ToArray(), frame.Body.ToArray());
        Assert.Equal("cd\0"u8.ToArray(), input.ToArray());
    }

    [Fact]
    public void Empty_body_with_content_length_zero()
    {
        var parsed = Parse.Single("SEND\ndestination:/q\ncontent-length:0\n\n\0");

        Assert.Empty(parsed.Body);
    }

    [Fact]
    public void Content_length_zero_is_allowed_on_a_frame_without_a_body()
    {
        var parsed = Parse.Single("SUBSCRIBE\nid:0\ndestination:/q\ncontent-length:0\n\n\0");

        Assert.Equal(StompCommand.Subscribe, parsed.Command);
        Assert.Equal(("content-length", "0"), parsed.Headers[2]);
    }

    [Fact]
    public void Content_length_with_leading_zeros_is_decimal()
    {
        var parsed = Parse.Single("SEND\ncontent-length:0003\n\nabc\0");

        Assert.Equal("abc"u8.ToArray(), parsed.Body);
    }

    [Fact]
    public void Repeated_content_length_uses_the_first()
    {
        var parsed = Parse.Single("SEND\ncontent-length:2\ncontent-length:5\n\na\0\0");

        Assert.Equal("a\0"u8.ToArray(), parsed.Body);
    }

    [Fact]
    public void Header_value_keeps_every_colon_after_the_first()
    {
        var parsed = Parse.Single("CONNECT\nhost:a:b:c\n\n\0");

        Assert.Equal([("host", "a:b:c")], parsed.Headers);
    }

    [Fact]
    public void Empty_header_value_is_kept()
    {
        var parsed = Parse.Single("SEND\ndestination:/q\nempty:\n\n\0");

        Assert.Equal(("empty", ""), parsed.Headers[1]);
    }

    [Fact]
    public void Headers_are_neither_trimmed_nor_padded()
    {
        var parsed = Parse.Single("SEND\n destination : /queue/a \n\tx\t:\t\n\n\0");

        Assert.Equal([(" destination ", " /queue/a "), ("\tx\t", "\t")], parsed.Headers);
    }

    [Fact]
    public void Header_names_are_case_sensitive()
    {
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>(Sequences.Utf8("SEND\nDestination:/upper\ndestination:/lower\n\n\0"));

        Assert.True(parser.TryParse(ref input, out var frame));

        Assert.Equal("/lower", frame.Headers.GetString("destination"));
        Assert.Equal("/upper", frame.Headers.GetString("Destination"));
        Assert.Null(frame.Headers.GetString("DESTINATION"));
    }

    [Fact]
    public void Repeated_headers_are_all_kept_in_order_and_lookup_returns_the_first()
    {
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>(Sequences.Utf8("MESSAGE\nfoo:World\nbar:1\nfoo:Hello\nfoo:Again\n\n\0"));

        Assert.True(parser.TryParse(ref input, out var frame));

        Assert.Equal(4, frame.Headers.Count);
        Assert.Equal(
            [new("foo", "World"), new("bar", "1"), new("foo", "Hello"), new("foo", "Again")],
            frame.Headers.ToList());
        Assert.True(frame.Headers.TryGetValue("foo"u8, out var first));
        Assert.Equal("World"u8.ToArray(), first.ToArray());
        Assert.Equal("World", frame.Headers.GetString("foo"u8));
        Assert.True(frame.Headers.Contains("bar"u8));
        Assert.False(frame.Headers.Contains("baz"u8));
    }

    [Fact]
    public void UTF8_headers_are_decoded()
    {
        var parsed = Parse.Single("SEND\ndestination:/queue/é漢🙂\nnäme:välue\n\n\0");

        Assert.Equal([("destination", "/queue/é漢🙂"), ("näme", "välue")], parsed.Headers);
    }

    [Fact]
    public void Mixed_LF_and_CRLF_line_ends_in_one_frame()
    {
        var parsed = Parse.Single("SEND\r\ndestination:/q\nx:y\r\n\nbody\0");

        Assert.Equal([("destination", "/q"), ("x", "y")], parsed.Headers);
        Assert.Equal("body", parsed.BodyText);
    }

    [Fact]
    public void Only_one_CR_before_LF_belongs_to_the_EOL()
    {
        // EOL = [CR] LF: a second CR is part of the value (1.2 cannot carry a raw CR otherwise).
        var parsed = Parse.Single("SEND\nx:y\r\r\n\n\0");

        Assert.Equal([("x", "y\r")], parsed.Headers);
    }

    [Fact]
    public void Body_is_a_slice_of_the_input_not_a_copy()
    {
        var data = Sequences.Utf8("SEND\ndestination:/q\ncontent-length:5\n\nhello\0");
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>(data);

        Assert.True(parser.TryParse(ref input, out var frame));

        Assert.True(MemoryMarshal.TryGetArray(frame.Body.First, out var segment));
        Assert.Same(data, segment.Array);
        Assert.Equal(data.Length - 6, segment.Offset);
    }

    [Fact]
    public void Body_spanning_segments_is_returned_as_a_multi_segment_slice()
    {
        var data = Sequences.Utf8("SEND\ncontent-length:5\n\nhello\0");
        var input = Sequences.SplitAt(data, data.Length - 3);
        using var parser = new StompParser();

        Assert.True(parser.TryParse(ref input, out var frame));

        Assert.False(frame.Body.IsSingleSegment);
        Assert.Equal("hello"u8.ToArray(), frame.Body.ToArray());
    }

    [Fact]
    public void Parser_speaks_1_2_until_told_otherwise()
    {
        using var parser = new StompParser();

        Assert.Equal(StompVersion.V1_2, parser.Version);
        Assert.Same(StompParserLimits.Default, parser.Limits);
    }

    [Fact]
    public void Frame_view_reports_its_shape()
    {
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>(Sequences.Utf8("SEND\na:1\nb:2\n\nxyz\0"));

        Assert.True(parser.TryParse(ref input, out var frame));

        Assert.False(frame.IsHeartBeat);
        Assert.Equal("Send (2 headers, 3 bytes)", frame.ToString());
        Assert.Equal("a"u8.ToArray(), frame.Headers.GetName(0).ToArray());
        Assert.Equal("2"u8.ToArray(), frame.Headers.GetValue(1).ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => frame.Headers.GetName(2).Length);
    }

    [Fact]
    public void Empty_input_is_incomplete()
    {
        using var parser = new StompParser();
        var input = ReadOnlySequence<byte>.Empty;

        Assert.False(parser.TryParse(ref input, out var frame));
        Assert.True(frame.IsHeartBeat);
    }

    [Fact]
    public void Parser_is_usable_again_after_an_error_once_the_input_is_discarded()
    {
        using var parser = new StompParser();
        var bad = new ReadOnlySequence<byte>(Sequences.Utf8("SEND\nno colon here\n\n\0"));
        Assert.Throws<StompProtocolException>(() => parser.TryParse(ref bad, out _));

        // A half-parsed frame before the error must not leak into the next one.
        var partial = new ReadOnlySequence<byte>(Sequences.Utf8("SEND\na:1\n"));
        Assert.False(parser.TryParse(ref partial, out _));
        parser.Reset();

        var good = new ReadOnlySequence<byte>(Sequences.Utf8("ACK\nid:1\n\n\0"));
        Assert.True(parser.TryParse(ref good, out var frame));
        Assert.Equal(StompCommand.Ack, frame.Command);
        Assert.Equal([new("id", "1")], frame.Headers.ToList());
    }
}
