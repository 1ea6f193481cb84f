using System.Buffers;
using System.Text;
using Broker.Stomp.Tests.TestHelpers;

namespace Broker.Stomp.Tests;

/// <summary>The writer's exact bytes: content-length on every body, blank line, NUL, heart-beats.</summary>
public sealed class WriterTests
{
    [Theory]
    [InlineData(StompCommand.Send, "SEND")]
    [InlineData(StompCommand.Message, "MESSAGE")]
    [InlineData(StompCommand.Error, "ERROR")]
    public void Content_length_is_written_for_every_body(StompCommand command, string name)
    {
        using var frame = new FrameBuilder(command).Header("destination", "/queue/a").WithBody(Sequences.Utf8("hello"));

        var wire = Encoding.UTF8.GetString(frame.Encode());

        Assert.Equal(name + "\ndestination:/queue/a\ncontent-length:5\n\nhello\0", wire);
    }

    [Theory]
    [InlineData(StompCommand.Send, "SEND")]
    [InlineData(StompCommand.Message, "MESSAGE")]
    [InlineData(StompCommand.Error, "ERROR")]
    public void Content_length_zero_is_written_for_an_empty_body(StompCommand command, string name)
    {
        using var frame = new FrameBuilder(command).Header("destination", "/queue/a");

        var wire = Encoding.UTF8.GetString(frame.Encode());

        Assert.Equal(name + "\ndestination:/queue/a\ncontent-length:0\n\n\0", wire);
    }

    [Fact]
    public void Body_with_NUL_octets_round_trips_through_content_length()
    {
        byte[] body = [0, 1, 2, 0, 0, 255];
        using var frame = new FrameBuilder(StompCommand.Message).Header("destination", "/q").WithBody(body);

        var wire = frame.Encode();

        Assert.Equal([.. "MESSAGE\ndestination:/q\ncontent-length:6\n\n"u8, .. body, 0], wire);
        Assert.Equal(body, Parse.Single(wire).Body);
    }

    [Theory]
    [InlineData(StompCommand.Connect, "CONNECT")]
    [InlineData(StompCommand.Subscribe, "SUBSCRIBE")]
    [InlineData(StompCommand.Receipt, "RECEIPT")]
    [InlineData(StompCommand.Disconnect, "DISCONNECT")]
    public void Frames_without_a_body_get_no_content_length(StompCommand command, string name)
    {
        using var frame = new FrameBuilder(command).Header("id", "1");

        var wire = Encoding.UTF8.GetString(frame.Encode());

        Assert.Equal(name + "\nid:1\n\n\0", wire);
    }

    [Fact]
    public void Body_on_a_frame_that_may_not_have_one_throws()
    {
        using var frame = new FrameBuilder(StompCommand.Subscribe).Header("id", "1").WithBody([1]);

        var error = Assert.Throws<ArgumentException>(() => frame.Encode());
        Assert.Equal("body", error.ParamName);
    }

    [Fact]
    public void Content_length_header_of_a_frame_is_replaced_by_the_real_one()
    {
        using var frame = new FrameBuilder(StompCommand.Send)
            .Header("destination", "/q")
            .Header("content-length", "999")
            .Header("x", "y")
            .Header("content-length", "1")
            .WithBody(Sequences.Utf8("abc"));

        var wire = Encoding.UTF8.GetString(frame.Encode());

        Assert.Equal("SEND\ndestination:/q\nx:y\ncontent-length:3\n\nabc\0", wire);
    }

    [Fact]
    public void Parsed_frame_written_again_carries_one_content_length_with_the_real_value()
    {
        var data = Sequences.Utf8("SEND\ncontent-length:5\ndestination:/q\n\nhe\0lo\0");
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>(data);
        Assert.True(parser.TryParse(ref input, out var frame));
        var output = new ArrayBufferWriter<byte>();

        StompWriter.Write(frame, output, StompVersion.V1_2);

        Assert.Equal(Sequences.Utf8("SEND\ndestination:/q\ncontent-length:5\n\nhe\0lo\0"), output.WrittenSpan.ToArray());
    }

    [Fact]
    public void Parsed_content_length_zero_on_a_bodiless_frame_is_dropped()
    {
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>(Sequences.Utf8("UNSUBSCRIBE\nid:0\ncontent-length:0\n\n\0"));
        Assert.True(parser.TryParse(ref input, out var frame));
        var output = new ArrayBufferWriter<byte>();

        StompWriter.Write(frame, output, StompVersion.V1_2);

        Assert.Equal("UNSUBSCRIBE\nid:0\n\n\0", Encoding.UTF8.GetString(output.WrittenSpan));
    }

    [Fact]
    public void Multi_segment_body_is_written_whole()
    {
        var body = Sequences.FromPieces(Sequences.Utf8("ab"), ReadOnlyMemory<byte>.Empty, Sequences.Utf8("c\0d"));
        var frame = new StompFrame(StompCommand.Message, StompHeaders.Empty, body);
        var output = new ArrayBufferWriter<byte>();

        StompWriter.Write(frame, output, StompVersion.V1_2);

        Assert.Equal(Sequences.Utf8("MESSAGE\ncontent-length:5\n\nabc\0d\0"), output.WrittenSpan.ToArray());
    }

    [Fact]
    public void Span_body_overload_writes_the_same_bytes()
    {
        var output = new ArrayBufferWriter<byte>();

        StompWriter.WriteCommand(output, StompCommand.Error);
        StompWriter.WriteHeader(output, StompCommand.Error, StompVersion.V1_2, "message", "bad: frame");
        StompWriter.WriteBody(output, StompCommand.Error, "details"u8);

        Assert.Equal("ERROR\nmessage:bad\\c frame\ncontent-length:7\n\ndetails\0", Encoding.UTF8.GetString(output.WrittenSpan));
    }

    [Fact]
    public void Span_body_overload_rejects_a_body_on_a_bodiless_frame()
    {
        var output = new ArrayBufferWriter<byte>();

        Assert.Throws<ArgumentException>(() => StompWriter.WriteBody(output, StompCommand.Receipt, "x"u8));
    }

    [Fact]
    public void Heart_beat_is_one_LF()
    {
        var output = new ArrayBufferWriter<byte>();

        StompWriter.Write(StompFrame.HeartBeat, output, StompVersion.V1_2);
        StompWriter.WriteHeartBeat(output);

        Assert.Equal("\n\n"u8.ToArray(), output.WrittenSpan.ToArray());
    }

    [Fact]
    public void Heart_beat_is_not_a_command()
    {
        var output = new ArrayBufferWriter<byte>();

        Assert.Throws<ArgumentException>(() => StompWriter.WriteCommand(output, StompCommand.HeartBeat));
    }

    [Fact]
    public void Integer_header_is_written_in_decimal()
    {
        var output = new ArrayBufferWriter<byte>();

        StompWriter.WriteHeader(output, "content-length"u8, 1234567890123L);
        StompWriter.WriteHeader(output, "x"u8, 0);

        Assert.Equal("content-length:1234567890123\nx:0\n", Encoding.UTF8.GetString(output.WrittenSpan));
    }

    [Fact]
    public void Written_frames_concatenate_into_a_stream_the_parser_splits_again()
    {
        var output = new ArrayBufferWriter<byte>();
        using (var connect = new FrameBuilder(StompCommand.Connected).Header("version", "1.2").Header("heart-beat", "0,0"))
        {
            StompWriter.Write(connect.Build(), output, StompVersion.V1_2);
        }

        StompWriter.WriteHeartBeat(output);
        using (var message = new FrameBuilder(StompCommand.Message).Header("subscription", "0").WithBody([0, 0]))
        {
            StompWriter.Write(message.Build(), output, StompVersion.V1_2);
        }

        StompWriter.WriteHeartBeat(output);
        StompWriter.WriteHeartBeat(output);

        var frames = Parse.All(new ReadOnlySequence<byte>(output.WrittenMemory), out var left);

        Assert.Equal(0, left);
        Assert.Equal([StompCommand.Connected, StompCommand.Message], frames.Select(f => f.Command));
        Assert.Equal([0, 0], frames[1].Body);
    }

    [Fact]
    public void Writer_uses_the_buffer_writer_without_an_intermediate_copy_of_the_body()
    {
        // A large body must arrive intact through GetSpan/Advance in however many pieces the writer asks for.
        var body = new byte[100_000];
        new Random(3).NextBytes(body);
        using var frame = new FrameBuilder(StompCommand.Send).Header("destination", "/q").WithBody(body);

        var parsed = Parse.Single(frame.Encode());

        Assert.Equal(body, parsed.Body);
        Assert.Equal(("content-length", "100000"), parsed.Headers[1]);
    }
}
