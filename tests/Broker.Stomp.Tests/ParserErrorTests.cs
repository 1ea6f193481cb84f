using System.Buffers;
using Broker.Stomp.Tests.TestHelpers;

namespace Broker.Stomp.Tests;

/// <summary>
/// Every malformed input throws <see cref="StompProtocolException"/> with its own <see cref="StompErrorKind"/> and a
/// message precise enough for an ERROR frame (the exact text is asserted). Limits are in <see cref="LimitTests"/>.
/// </summary>
public sealed class ParserErrorTests
{
    [Fact]
    public void Undefined_escape_t_is_fatal()
    {
        var error = Parse.Error("SEND\ndestination:/a\\tb\n\n\0");

        Assert.Equal(StompErrorKind.UndefinedEscape, error.Kind);
        Assert.Equal("undefined escape sequence '\\t' in a header (STOMP 1.2 defines \\n \\c \\\\ \\r)", error.Message);
    }

    [Fact]
    public void Undefined_escape_in_a_header_name_is_fatal()
    {
        var error = Parse.Error("SEND\na\\x:b\n\n\0");

        Assert.Equal(StompErrorKind.UndefinedEscape, error.Kind);
        Assert.Equal("undefined escape sequence '\\x' in a header (STOMP 1.2 defines \\n \\c \\\\ \\r)", error.Message);
    }

    [Fact]
    public void Escape_r_is_undefined_in_1_1()
    {
        var error = Parse.Error("SEND\ndestination:/a\\rb\n\n\0", StompVersion.V1_1);

        Assert.Equal(StompErrorKind.UndefinedEscape, error.Kind);
        Assert.Equal("undefined escape sequence '\\r' in a header (STOMP 1.1 defines \\n \\c \\\\)", error.Message);
    }

    [Fact]
    public void Escape_of_a_non_printable_octet_is_shown_in_hex()
    {
        var error = Parse.Error("SEND\nx:a\\\u0001\n\n\0");

        Assert.Equal(StompErrorKind.UndefinedEscape, error.Kind);
        Assert.Equal("undefined escape sequence '\\0x01' in a header (STOMP 1.2 defines \\n \\c \\\\ \\r)", error.Message);
    }

    [Fact]
    public void Backslash_at_the_end_of_a_header_is_an_undefined_escape()
    {
        var error = Parse.Error("SEND\ndestination:/a\\\n\n\0");

        Assert.Equal(StompErrorKind.UndefinedEscape, error.Kind);
        Assert.Equal("undefined escape sequence: a header ends with '\\'", error.Message);
    }

    [Fact]
    public void Missing_NUL_after_a_content_length_body()
    {
        var error = Parse.Error("SEND\ndestination:/q\ncontent-length:5\n\nhelloX\0");

        Assert.Equal(StompErrorKind.MissingNul, error.Kind);
        Assert.Equal("expected NUL after the 5-byte body given by content-length", error.Message);
    }

    [Fact]
    public void Body_longer_than_content_length_zero_is_a_missing_NUL()
    {
        var error = Parse.Error("SEND\ncontent-length:0\n\nabc\0");

        Assert.Equal(StompErrorKind.MissingNul, error.Kind);
        Assert.Equal("expected NUL after the 0-byte body given by content-length", error.Message);
    }

    [Theory]
    [InlineData("abc", "invalid content-length 'abc': expected a non-negative decimal integer")]
    [InlineData("12a", "invalid content-length '12a': expected a non-negative decimal integer")]
    [InlineData("-1", "invalid content-length '-1': expected a non-negative decimal integer")]
    [InlineData("+1", "invalid content-length '+1': expected a non-negative decimal integer")]
    [InlineData("", "invalid content-length '': expected a non-negative decimal integer")]
    [InlineData(" 5", "invalid content-length ' 5': expected a non-negative decimal integer")]
    [InlineData("5 ", "invalid content-length '5 ': expected a non-negative decimal integer")]
    [InlineData("1.5", "invalid content-length '1.5': expected a non-negative decimal integer")]
    [InlineData("9223372036854775808", "invalid content-length '9223372036854775808': expected a non-negative decimal integer")]
    [InlineData("12345678901", "invalid content-length '12345678901': expected a non-negative decimal integer")]
    [InlineData("99999999999999999999999", "invalid content-length '99999999999999999999999': expected a non-negative decimal integer")]
    public void Invalid_content_length(string value, string message)
    {
        var error = Parse.Error($"SEND\ndestination:/q\ncontent-length:{value}\n\n\0");

        Assert.Equal(StompErrorKind.InvalidContentLength, error.Kind);
        Assert.Equal(message, error.Message);
    }

    [Theory]
    [InlineData("FOO", "unknown command 'FOO'")]
    [InlineData("send", "unknown command 'send'")]
    [InlineData("Send", "unknown command 'Send'")]
    [InlineData("connect", "unknown command 'connect'")]
    [InlineData("SEND ", "unknown command 'SEND '")]
    [InlineData(" SEND", "unknown command ' SEND'")]
    [InlineData("SENDX", "unknown command 'SENDX'")]
    [InlineData("HEARTBEAT", "unknown command 'HEARTBEAT'")]
    [InlineData("SEND:x", "unknown command 'SEND?x'")]
    public void Unknown_command(string command, string message)
    {
        var error = Parse.Error(command + "\n\n\0");

        Assert.Equal(StompErrorKind.UnknownCommand, error.Kind);
        Assert.Equal(message, error.Message);
    }

    [Fact]
    public void Unknown_command_is_reported_without_waiting_for_the_rest_of_the_frame()
    {
        var error = Parse.Error("GET / HTTP/1.1\r\n");

        Assert.Equal(StompErrorKind.UnknownCommand, error.Kind);
        Assert.Equal("unknown command 'GET / HTTP/1.1'", error.Message);
    }

    [Fact]
    public void Unknown_command_that_is_not_UTF8_is_not_quoted()
    {
        var error = Parse.Error([0xFF, 0xFE, (byte)'\n', (byte)'\n', 0]);

        Assert.Equal(StompErrorKind.UnknownCommand, error.Kind);
        Assert.Equal("unknown command '(not UTF-8)'", error.Message);
    }

    [Fact]
    public void Long_unknown_command_is_cut_short_in_the_message()
    {
        var error = Parse.Error(new string('A', 100) + "\n\n\0");

        Assert.Equal(StompErrorKind.UnknownCommand, error.Kind);
        Assert.Equal($"unknown command '{new string('A', 40)}...'", error.Message);
    }

    [Fact]
    public void Header_line_without_a_colon()
    {
        var error = Parse.Error("SEND\ndestination\n\n\0");

        Assert.Equal(StompErrorKind.HeaderWithoutColon, error.Kind);
        Assert.Equal("header line without ':' in SEND: 'destination'", error.Message);
    }

    [Fact]
    public void Header_line_without_a_colon_in_CONNECT()
    {
        var error = Parse.Error("CONNECT\naccept-version:1.2\nhost\n\n\0");

        Assert.Equal(StompErrorKind.HeaderWithoutColon, error.Kind);
        Assert.Equal("header line without ':' in CONNECT: 'host'", error.Message);
    }

    [Fact]
    public void Escaped_colon_does_not_count_as_the_separator()
    {
        var error = Parse.Error("SEND\nname\\cvalue\n\n\0");

        Assert.Equal(StompErrorKind.HeaderWithoutColon, error.Kind);
        Assert.Equal("header line without ':' in SEND: 'name?cvalue'", error.Message);
    }

    [Fact]
    public void Empty_header_name()
    {
        var error = Parse.Error("SEND\n:value\n\n\0");

        Assert.Equal(StompErrorKind.EmptyHeaderName, error.Kind);
        Assert.Equal("header with an empty name in SEND", error.Message);
    }

    [Theory]
    [InlineData(new byte[] { 0xFF })]
    [InlineData(new byte[] { 0xC3 })] // a lead byte without its continuation
    [InlineData(new byte[] { 0x80 })] // a continuation byte alone
    [InlineData(new byte[] { 0xC0, 0xAF })] // overlong '/'
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 })] // a UTF-16 surrogate
    [InlineData(new byte[] { 0xF4, 0x90, 0x80, 0x80 })] // above U+10FFFF
    public void Invalid_UTF8_in_a_header_value(byte[] invalid)
    {
        byte[] data = [.. "SEND\ndestination:/q"u8, .. invalid, .. "\n\n\0"u8];

        var error = Parse.Error(data);

        Assert.Equal(StompErrorKind.InvalidUtf8, error.Kind);
        Assert.Equal("header is not valid UTF-8 in SEND", error.Message);
    }

    [Fact]
    public void Invalid_UTF8_in_a_header_name()
    {
        byte[] data = [.. "MESSAGE\nna"u8, 0xFE, .. "me:v\n\n\0"u8];

        var error = Parse.Error(data);

        Assert.Equal(StompErrorKind.InvalidUtf8, error.Kind);
        Assert.Equal("header is not valid UTF-8 in MESSAGE", error.Message);
    }

    [Fact]
    public void Invalid_UTF8_is_checked_in_CONNECT_too()
    {
        byte[] data = [.. "CONNECT\nlogin:"u8, 0xFF, .. "\n\n\0"u8];

        var error = Parse.Error(data);

        Assert.Equal(StompErrorKind.InvalidUtf8, error.Kind);
        Assert.Equal("header is not valid UTF-8 in CONNECT", error.Message);
    }

    [Theory]
    [InlineData("SUBSCRIBE\nid:0\ndestination:/q\ncontent-length:5\n\nhello\0", "SUBSCRIBE frames may not have a body (content-length: 5)")]
    [InlineData("CONNECT\naccept-version:1.2\ncontent-length:1\n\nx\0", "CONNECT frames may not have a body (content-length: 1)")]
    [InlineData("RECEIPT\nreceipt-id:1\ncontent-length:2\n\nab\0", "RECEIPT frames may not have a body (content-length: 2)")]
    public void Body_not_allowed_with_content_length(string frame, string message)
    {
        var error = Parse.Error(frame);

        Assert.Equal(StompErrorKind.BodyNotAllowed, error.Kind);
        Assert.Equal(message, error.Message);
    }

    [Fact]
    public void Body_not_allowed_is_reported_before_the_body_arrives()
    {
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>(Sequences.Utf8("SUBSCRIBE\nid:0\ncontent-length:1000000\n\n"));

        var error = Assert.Throws<StompProtocolException>(() => parser.TryParse(ref input, out _));

        Assert.Equal(StompErrorKind.BodyNotAllowed, error.Kind);
        Assert.Equal("SUBSCRIBE frames may not have a body (content-length: 1000000)", error.Message);
    }

    [Theory]
    [InlineData("SUBSCRIBE\nid:0\ndestination:/q\n\nhello\0", "SUBSCRIBE frames may not have a body")]
    [InlineData("UNSUBSCRIBE\nid:0\n\nx\0", "UNSUBSCRIBE frames may not have a body")]
    [InlineData("DISCONNECT\n\n\n\0", "DISCONNECT frames may not have a body")]
    [InlineData("CONNECTED\nversion:1.2\n\n \0", "CONNECTED frames may not have a body")]
    public void Body_not_allowed_without_content_length(string frame, string message)
    {
        var error = Parse.Error(frame);

        Assert.Equal(StompErrorKind.BodyNotAllowed, error.Kind);
        Assert.Equal(message, error.Message);
    }

    [Fact]
    public void Body_not_allowed_is_reported_at_the_first_body_octet_without_waiting_for_a_NUL()
    {
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>(Sequences.Utf8("ACK\nid:1\n\nx"));

        var error = Assert.Throws<StompProtocolException>(() => parser.TryParse(ref input, out _));

        Assert.Equal(StompErrorKind.BodyNotAllowed, error.Kind);
        Assert.Equal("ACK frames may not have a body", error.Message);
    }

    [Fact]
    public void Content_length_with_the_blank_line_omitted()
    {
        // The blank line may be left out (the spec's DISCONNECT example does), but then the frame ends at that NUL.
        var error = Parse.Error("SEND\ndestination:/q\ncontent-length:3\n\0ab\0");

        Assert.Equal(StompErrorKind.InvalidContentLength, error.Kind);
        Assert.Equal("content-length 3 in a SEND frame that ends after its headers (NUL instead of a blank line)", error.Message);
    }

    [Theory]
    [InlineData("\rX")]
    [InlineData("\r\r\n")]
    [InlineData("\n\rSEND\n\n\0")]
    public void CR_not_followed_by_LF_before_a_frame(string input)
    {
        var error = Parse.Error(input);

        Assert.Equal(StompErrorKind.InvalidLineEnding, error.Kind);
        Assert.Equal("CR not followed by LF between frames", error.Message);
    }

    [Fact]
    public void CR_not_followed_by_LF_after_a_frame_does_not_lose_the_frame()
    {
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>(Sequences.Utf8("BEGIN\ntransaction:t\n\n\0\r\n\rX"));

        Assert.True(parser.TryParse(ref input, out var frame));
        Assert.Equal(StompCommand.Begin, frame.Command);
        Assert.Equal("\rX"u8.ToArray(), input.ToArray());

        var error = Assert.Throws<StompProtocolException>(() => parser.TryParse(ref input, out _));
        Assert.Equal(StompErrorKind.InvalidLineEnding, error.Kind);
        Assert.Equal("CR not followed by LF between frames", error.Message);
    }

    [Fact]
    public void Error_message_quotes_input_only_as_printable_ASCII()
    {
        // The message becomes an ERROR frame's header: no CR, LF, colon or backslash may leak into it.
        var error = Parse.Error("SEND\nbad\\\\line\u0007\u00e9\n\n\0");

        Assert.Equal(StompErrorKind.HeaderWithoutColon, error.Kind);
        Assert.Equal("header line without ':' in SEND: 'bad??line???'", error.Message);
        Assert.DoesNotContain('\n', error.Message);
        Assert.DoesNotContain('\r', error.Message);
    }

    [Theory]
    [InlineData(StompErrorKind.FrameTooLarge, true)]
    [InlineData(StompErrorKind.BodyTooLarge, true)]
    [InlineData(StompErrorKind.TooManyHeaders, true)]
    [InlineData(StompErrorKind.HeaderLineTooLong, true)]
    [InlineData(StompErrorKind.UnknownCommand, false)]
    [InlineData(StompErrorKind.UndefinedEscape, false)]
    [InlineData(StompErrorKind.MissingNul, false)]
    [InlineData(StompErrorKind.InvalidUtf8, false)]
    public void Limit_errors_are_told_apart_from_grammar_errors(StompErrorKind kind, bool isLimit)
    {
        Assert.Equal(isLimit, new StompProtocolException(kind, "x").IsLimit);
    }

    [Fact]
    public void Error_in_a_later_frame_comes_after_the_good_frames_before_it()
    {
        using var parser = new StompParser();
        var input = new ReadOnlySequence<byte>(Sequences.Utf8("BEGIN\ntransaction:a\n\n\0COMMIT\ntransaction:a\n\n\0send\n\n\0"));

        Assert.True(parser.TryParse(ref input, out var first));
        Assert.Equal(StompCommand.Begin, first.Command);
        Assert.True(parser.TryParse(ref input, out var second));
        Assert.Equal(StompCommand.Commit, second.Command);
        var error = Assert.Throws<StompProtocolException>(() => parser.TryParse(ref input, out _));
        Assert.Equal(StompErrorKind.UnknownCommand, error.Kind);
    }
}
