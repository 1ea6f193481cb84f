using System.Buffers;
using System.Text;
using Broker.Stomp.Tests.TestHelpers;

namespace Broker.Stomp.Tests;

/// <summary>Header escaping both ways, per version and per command (STOMP 1.2 "Value Encoding").</summary>
public sealed class EscapingTests
{
    [Fact]
    public void V1_2_decodes_r_n_c_and_backslash_in_values()
    {
        var parsed = Parse.Single("SEND\nx:a\\rb\\nc\\cd\\\\e\n\n\0", StompVersion.V1_2);

        Assert.Equal([("x", "a\rb\nc:d\\e")], parsed.Headers);
    }

    [Fact]
    public void V1_2_decodes_escapes_in_names()
    {
        var parsed = Parse.Single("MESSAGE\na\\cb\\\\c\\nd\\re:v\n\n\0", StompVersion.V1_2);

        Assert.Equal([("a:b\\c\nd\re", "v")], parsed.Headers);
    }

    [Fact]
    public void V1_2_decodes_adjacent_and_repeated_escapes()
    {
        var parsed = Parse.Single("SEND\nx:\\\\\\\\\\c\\c\\n\\n\n\n\0", StompVersion.V1_2);

        Assert.Equal([("x", "\\\\::\n\n")], parsed.Headers);
    }

    [Fact]
    public void V1_1_decodes_n_c_and_backslash()
    {
        var parsed = Parse.Single("SEND\nx:a\\nc\\cd\\\\e\n\n\0", StompVersion.V1_1);

        Assert.Equal([("x", "a\nc:d\\e")], parsed.Headers);
    }

    [Fact]
    public void V1_1_rejects_r_which_only_1_2_defines()
    {
        var error = Parse.Error("SEND\nx:a\\rb\n\n\0", StompVersion.V1_1);

        Assert.Equal(StompErrorKind.UndefinedEscape, error.Kind);
    }

    [Theory]
    [InlineData("SEND\nx:a\\tb\\rc\\cd\\ne\\\\f\\\n\n\0")]
    [InlineData("SEND\nx\\c:\\\n\n\0")]
    public void V1_0_decodes_nothing(string frame)
    {
        var parsed = Parse.Single(frame, StompVersion.V1_0);

        var line = frame.Split('\n')[1];
        var colon = line.IndexOf(':', StringComparison.Ordinal);
        Assert.Equal([(line[..colon], line[(colon + 1)..])], parsed.Headers);
    }

    [Theory]
    [InlineData("CONNECT", StompVersion.V1_2)]
    [InlineData("STOMP", StompVersion.V1_2)]
    [InlineData("CONNECTED", StompVersion.V1_2)]
    [InlineData("CONNECT", StompVersion.V1_1)]
    [InlineData("CONNECTED", StompVersion.V1_1)]
    public void CONNECT_STOMP_and_CONNECTED_headers_are_never_decoded(string command, StompVersion version)
    {
        var parsed = Parse.Single(command + "\nlogin:us\\er\npasscode:a\\cb\nx\\n:\\t\\\\\\r\n\n\0", version);

        Assert.Equal([("login", "us\\er"), ("passcode", "a\\cb"), ("x\\n", "\\t\\\\\\r")], parsed.Headers);
    }

    [Theory]
    [InlineData(StompVersion.V1_0)]
    [InlineData(StompVersion.V1_1)]
    [InlineData(StompVersion.V1_2)]
    public void Content_length_is_found_after_decoding(StompVersion version)
    {
        var parsed = Parse.Single("SEND\nx:\\\\\ncontent-length:3\n\na\0b\0", version);

        Assert.Equal("a\0b"u8.ToArray(), parsed.Body);
    }

    [Fact]
    public void Writer_1_2_escapes_CR_LF_colon_and_backslash_in_names_and_values()
    {
        using var frame = new FrameBuilder(StompCommand.Message).Header("a:b\\c\nd\re", "1\r2\n3:4\\5");

        var wire = Encoding.UTF8.GetString(frame.Encode(StompVersion.V1_2));

        Assert.Equal("MESSAGE\na\\cb\\\\c\\nd\\re:1\\r2\\n3\\c4\\\\5\ncontent-length:0\n\n\0", wire);
    }

    [Fact]
    public void Writer_1_1_escapes_LF_colon_and_backslash_and_writes_CR_raw()
    {
        using var frame = new FrameBuilder(StompCommand.Receipt).Header("a:b", "1\r2\n3:4\\5");

        var wire = Encoding.UTF8.GetString(frame.Encode(StompVersion.V1_1));

        Assert.Equal("RECEIPT\na\\cb:1\r2\\n3\\c4\\\\5\n\n\0", wire);
    }

    [Fact]
    public void Writer_1_0_writes_CR_and_LF_as_r_and_n_only_so_they_cannot_inject_headers()
    {
        using var frame = new FrameBuilder(StompCommand.Message)
            .Header("destination", "/q\nsubscription:evil\r")
            .Header("x", "a:b\\c");

        var wire = frame.Encode(StompVersion.V1_0);

        Assert.Equal("MESSAGE\ndestination:/q\\nsubscription:evil\\r\nx:a:b\\c\ncontent-length:0\n\n\0", Encoding.UTF8.GetString(wire));
        var parsed = Parse.Single(wire, StompVersion.V1_0);
        Assert.Equal([("destination", "/q\\nsubscription:evil\\r"), ("x", "a:b\\c"), ("content-length", "0")], parsed.Headers);
    }

    [Theory]
    [InlineData(StompCommand.Connect, StompVersion.V1_2)]
    [InlineData(StompCommand.Stomp, StompVersion.V1_2)]
    [InlineData(StompCommand.Connected, StompVersion.V1_2)]
    [InlineData(StompCommand.Connected, StompVersion.V1_1)]
    [InlineData(StompCommand.Connected, StompVersion.V1_0)]
    public void Writer_never_encodes_CONNECT_STOMP_or_CONNECTED_headers(StompCommand command, StompVersion version)
    {
        using var frame = new FrameBuilder(command).Header("passcode", "a:b\\c").Header("server", "x/1.0 (c:\\)");

        var wire = Encoding.UTF8.GetString(frame.Encode(version));

        var name = Encoding.ASCII.GetString(StompCommands.GetName(command));
        Assert.Equal(name + "\npasscode:a:b\\c\nserver:x/1.0 (c:\\)\n\n\0", wire);
    }

    [Theory]
    [InlineData(StompCommand.Connect, "a\nb")]
    [InlineData(StompCommand.Connected, "a\rb")]
    [InlineData(StompCommand.Stomp, "\r\n")]
    public void Writer_throws_for_CR_or_LF_in_a_CONNECT_or_CONNECTED_header(StompCommand command, string value)
    {
        using var frame = new FrameBuilder(command).Header("x", value);

        var error = Assert.Throws<ArgumentException>(() => frame.Encode(StompVersion.V1_2));
        Assert.Contains("cannot hold CR or LF", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Writer_throws_for_CR_or_LF_in_a_CONNECTED_header_name()
    {
        using var frame = new FrameBuilder(StompCommand.Connected).Header("a\nb", "v");

        Assert.Throws<ArgumentException>(() => frame.Encode(StompVersion.V1_2));
    }

    [Fact]
    public void Writer_string_overload_escapes_long_headers_too()
    {
        var output = new ArrayBufferWriter<byte>();
        var value = new string('x', 600) + ":\n" + new string('é', 300);

        StompWriter.WriteHeader(output, StompCommand.Send, StompVersion.V1_2, "k:", value);

        var expected = "k\\c:" + new string('x', 600) + "\\c\\n" + new string('é', 300) + "\n";
        Assert.Equal(expected, Encoding.UTF8.GetString(output.WrittenSpan));
    }

    [Theory]
    [InlineData(StompVersion.V1_1)]
    [InlineData(StompVersion.V1_2)]
    public void Escaped_header_round_trips(StompVersion version)
    {
        const string Name = "we:ird\\na\nme é";
        const string Value = "v:a\\l\nu\\ce 🙂 ";
        using var frame = new FrameBuilder(StompCommand.Send).Header(Name, Value);

        var parsed = Parse.Single(frame.Encode(version), version);

        Assert.Equal([(Name, Value), ("content-length", "0")], parsed.Headers);
    }

    [Fact]
    public void Repeated_headers_are_all_written_in_order()
    {
        using var frame = new FrameBuilder(StompCommand.Message).Header("foo", "World").Header("foo", "Hello");

        var wire = Encoding.UTF8.GetString(frame.Encode());

        Assert.Equal("MESSAGE\nfoo:World\nfoo:Hello\ncontent-length:0\n\n\0", wire);
    }

    [Fact]
    public void Writer_does_not_trim_or_pad()
    {
        using var frame = new FrameBuilder(StompCommand.Send).Header(" a ", " b ").Header("c", "");

        var wire = Encoding.UTF8.GetString(frame.Encode());

        Assert.Equal("SEND\n a : b \nc:\ncontent-length:0\n\n\0", wire);
    }

    [Fact]
    public void Decoding_only_shrinks_so_long_escaped_headers_fit()
    {
        var value = string.Concat(Enumerable.Repeat("\\\\\\c\\n\\r", 500));
        var expected = string.Concat(Enumerable.Repeat("\\:\n\r", 500));

        var parsed = Parse.Single($"SEND\n{value}:{value}\n\n\0");

        Assert.Equal([(expected, expected)], parsed.Headers);
    }
}
