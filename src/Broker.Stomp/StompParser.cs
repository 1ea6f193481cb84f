using System.Buffers;
using System.Text;
using System.Text.Unicode;
using Broker.Stomp.Internal;

namespace Broker.Stomp;

/// <summary>
/// The STOMP 1.2 grammar, incremental over <see cref="ReadOnlySequence{T}"/>: one parser per connection.
/// <para>
/// <see cref="TryParse"/> returns false on a partial frame and consumes nothing; the caller keeps the
/// bytes and calls again with more. The parser remembers how far it got in that partial frame, so a frame that
/// arrives a few bytes at a time is scanned once, not once per arrival: call it again with the same start.
/// </para>
/// <para>Malformed or over-limit input throws <see cref="StompProtocolException"/> and nothing else. Not thread-safe.</para>
/// </summary>
public sealed class StompParser : IDisposable
{
    private static readonly SearchValues<byte> LineFeed = SearchValues.Create("\n"u8);

    private readonly StompHeaderTable _headers = new();
    private StompParserLimits _limits;
    private byte[]? _splitLine;

    // Where a partial frame stopped, so the next call resumes instead of rescanning.
    private Stage _stage;
    private StompCommand _command;
    private long _resumeAt;
    private long _contentLength;
    private long _bodySearched;

    /// <summary>Creates a parser with the given limits (the defaults when null).</summary>
    public StompParser(StompParserLimits? limits = null)
    {
        _limits = limits ?? StompParserLimits.Default;
        _limits.Validate();
    }

    private enum Stage : byte
    {
        Idle,
        Headers,
        Body,
    }

    /// <summary>The limits in force; a session may tighten them before CONNECT and relax them after.</summary>
    public StompParserLimits Limits
    {
        get => _limits;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            value.Validate();
            _limits = value;
        }
    }

    /// <summary>The negotiated version, which decides header escaping. 1.2 until a session says otherwise.</summary>
    public StompVersion Version { get; set; } = StompVersion.V1_2;

    /// <summary>
    /// Parses one frame, or a run of EOLs between frames reported as <see cref="StompFrame.HeartBeat"/>.
    /// On success <paramref name="input"/> is advanced past what was consumed. The frame's headers are valid
    /// until the next call; its body is a slice of <paramref name="input"/>.
    /// </summary>
    /// <returns>False when <paramref name="input"/> holds only part of a frame; nothing is consumed.</returns>
    /// <exception cref="StompProtocolException">The input is malformed or breaks a limit.</exception>
    public bool TryParse(ref ReadOnlySequence<byte> input, out StompFrame frame)
    {
        frame = default;
        if (input.IsEmpty)
        {
            return false;
        }

        var reader = new SequenceReader<byte>(input);
        try
        {
            if (_stage == Stage.Idle)
            {
                switch (TrySkipEols(ref reader))
                {
                    case Match.Yes:
                        input = input.Slice(reader.Position);
                        frame = StompFrame.HeartBeat;
                        return true;
                    case Match.Incomplete:
                        return false;
                }
            }
            else
            {
                reader.Advance(_resumeAt);
            }

            if (!TryParseFrame(ref reader, out frame))
            {
                return false;
            }

            SkipTrailingEols(ref reader);
            input = input.Slice(reader.Position);
            return true;
        }
        catch (StompProtocolException)
        {
            Reset();
            throw;
        }
    }

    /// <summary>Forgets a partial frame, for a caller that discards its buffered input.</summary>
    public void Reset()
    {
        _stage = Stage.Idle;
        _headers.Clear();
    }

    /// <summary>Returns pooled buffers.</summary>
    public void Dispose()
    {
        _headers.Dispose();
        if (_splitLine is not null)
        {
            ArrayPool<byte>.Shared.Return(_splitLine);
            _splitLine = null;
        }
    }

    // frame = command EOL *( header EOL ) EOL *OCTET NULL *( EOL )
    private bool TryParseFrame(ref SequenceReader<byte> reader, out StompFrame frame)
    {
        frame = default;
        if (_stage == Stage.Idle)
        {
            if (!TryReadLine(ref reader, out var commandLine))
            {
                return false;
            }

            _command = ParseCommand(commandLine);
            _headers.Clear();
            _stage = Stage.Headers;
            _resumeAt = reader.Consumed;
        }

        if (_stage == Stage.Headers)
        {
            if (!TryReadHeaders(ref reader, out var blankLineOmitted))
            {
                return false;
            }

            // The headers and the NUL at least: all of a frame without a body, which no body rule below checks.
            if (reader.Consumed + 1 > _limits.MaxFrameBytes)
            {
                ThrowFrameTooLarge();
            }

            _contentLength = ParseContentLength(reader.Consumed);
            if (blankLineOmitted && _contentLength > 0)
            {
                StompProtocolException.Throw(
                    StompErrorKind.InvalidContentLength,
                    $"content-length {_contentLength} in a {CommandName} frame that ends after its headers (NUL instead of a blank line)");
            }

            _bodySearched = 0;
            _stage = Stage.Body;
            _resumeAt = reader.Consumed;
        }

        if (!TryReadBody(ref reader, out var body))
        {
            return false;
        }

        _stage = Stage.Idle;
        frame = new StompFrame(_command, new StompHeaders(_headers), body);
        return true;
    }

    // *( header EOL ) EOL — resumes after the last complete header line. Tolerance: a NUL where a header line would
    // start also ends the headers and is left for the body rule as the frame's NUL, because the specification's own
    // DISCONNECT and RECEIPT examples leave out the blank line ("DISCONNECT\nreceipt:77\n^@").
    private bool TryReadHeaders(ref SequenceReader<byte> reader, out bool blankLineOmitted)
    {
        blankLineOmitted = false;
        var decode = HeaderEscaping.Decodes(_command, Version);
        while (true)
        {
            if (reader.TryPeek(out var first) && first == 0)
            {
                blankLineOmitted = true;
                return true;
            }

            if (!TryReadLine(ref reader, out var line))
            {
                return false;
            }

            if (line.IsEmpty)
            {
                return true;
            }

            ParseHeader(line, decode);
            _resumeAt = reader.Consumed;
            if (_resumeAt > _limits.MaxFrameBytes)
            {
                ThrowFrameTooLarge();
            }
        }
    }

    // header = header-name ":" header-value
    private void ParseHeader(ReadOnlySpan<byte> line, bool decode)
    {
        var colon = line.IndexOf((byte)':');
        if (colon < 0)
        {
            StompProtocolException.Throw(StompErrorKind.HeaderWithoutColon, $"header line without ':' in {CommandName}: '{Show(line)}'");
        }

        if (colon == 0)
        {
            StompProtocolException.Throw(StompErrorKind.EmptyHeaderName, $"header with an empty name in {CommandName}");
        }

        if (!Utf8.IsValid(line))
        {
            StompProtocolException.Throw(StompErrorKind.InvalidUtf8, $"header is not valid UTF-8 in {CommandName}");
        }

        if (_headers.Count >= _limits.MaxHeaders)
        {
            StompProtocolException.Throw(StompErrorKind.TooManyHeaders, $"too many headers: the limit is {_limits.MaxHeaders}");
        }

        var name = line[..colon];
        var value = line[(colon + 1)..];
        if (!decode || line.IndexOf((byte)'\\') < 0)
        {
            _headers.Add(name, value);
            return;
        }

        var destination = _headers.Reserve(name.Length + value.Length);
        var nameLength = HeaderEscaping.Decode(name, destination, Version);
        var valueLength = HeaderEscaping.Decode(value, destination[nameLength..], Version);
        _headers.Commit(nameLength, valueLength);
    }

    // octet body, then NULL: content-length octets when given, else up to the first NUL.
    private bool TryReadBody(ref SequenceReader<byte> reader, out ReadOnlySequence<byte> body)
    {
        body = default;
        var mayHaveBody = StompCommands.MayHaveBody(_command);
        if (_contentLength >= 0)
        {
            if (reader.Remaining <= _contentLength)
            {
                return false;
            }

            body = reader.Sequence.Slice(reader.Position, _contentLength);
            reader.Advance(_contentLength);
            reader.TryRead(out var terminator);
            if (terminator != 0)
            {
                StompProtocolException.Throw(StompErrorKind.MissingNul, $"expected NUL after the {_contentLength}-byte body given by content-length");
            }

            return true;
        }

        if (!mayHaveBody)
        {
            // A bodiless frame must end right here; say so at once rather than wait for a NUL.
            if (!reader.TryRead(out var terminator))
            {
                return false;
            }

            if (terminator != 0)
            {
                StompProtocolException.Throw(StompErrorKind.BodyNotAllowed, $"{CommandName} frames may not have a body");
            }

            return true;
        }

        var unread = reader.UnreadSequence;
        var nul = unread.Slice(_bodySearched).PositionOf((byte)0);
        if (nul is null)
        {
            _bodySearched = unread.Length;
            if (_bodySearched > _limits.MaxBodyBytes)
            {
                ThrowBodyTooLarge();
            }

            // The NUL is still to come, so the frame is at least one byte longer than what is here.
            if (reader.Consumed + _bodySearched + 1 > _limits.MaxFrameBytes)
            {
                ThrowFrameTooLarge();
            }

            return false;
        }

        body = unread.Slice(0, nul.Value);
        if (body.Length > _limits.MaxBodyBytes)
        {
            ThrowBodyTooLarge();
        }

        if (reader.Consumed + body.Length + 1 > _limits.MaxFrameBytes)
        {
            ThrowFrameTooLarge();
        }

        reader.Advance(body.Length + 1);
        return true;
    }

    // content-length = 1*DIGIT, checked against the limits before a single body byte is awaited.
    private long ParseContentLength(long headerBytes)
    {
        if (!_headers.TryGetValue(StompHeaderNames.ContentLength, out var text))
        {
            return -1;
        }

        if (text.IsEmpty || text.Length > 10)
        {
            ThrowInvalidContentLength(text);
        }

        long length = 0;
        foreach (var digit in text)
        {
            if (digit is < (byte)'0' or > (byte)'9')
            {
                ThrowInvalidContentLength(text);
            }

            length = (length * 10) + (digit - '0');
        }

        if (length > 0 && !StompCommands.MayHaveBody(_command))
        {
            StompProtocolException.Throw(StompErrorKind.BodyNotAllowed, $"{CommandName} frames may not have a body (content-length: {length})");
        }

        if (length > _limits.MaxBodyBytes)
        {
            ThrowBodyTooLarge();
        }

        if (headerBytes + length + 1 > _limits.MaxFrameBytes)
        {
            ThrowFrameTooLarge();
        }

        return length;
    }

    // command = client-command | server-command
    private static StompCommand ParseCommand(ReadOnlySpan<byte> line)
    {
        if (!StompCommands.TryParse(line, out var command))
        {
            var shown = Utf8.IsValid(line) ? Show(line) : "(not UTF-8)";
            StompProtocolException.Throw(StompErrorKind.UnknownCommand, $"unknown command '{shown}'");
        }

        return command;
    }

    // line = *OCTET EOL, at most MaxHeaderLineBytes before the EOL. A line that crosses buffer segments is
    // copied into one pooled array, so the rules above always see a single span.
    private bool TryReadLine(ref SequenceReader<byte> reader, out ReadOnlySpan<byte> line)
    {
        // + a CR; kept below Array.MaxLength so that max + 1 cannot overflow when the limit is int.MaxValue.
        var max = (int)Math.Min(_limits.MaxHeaderLineBytes + 1L, Array.MaxLength - 1);
        var span = reader.UnreadSpan;
        var window = span.Length > max ? span[..(max + 1)] : span;
        var lf = window.IndexOfAny(LineFeed);
        if (lf >= 0)
        {
            line = span[..lf];
            reader.Advance(lf + 1);
        }
        else if (span.Length > max)
        {
            ThrowLineTooLong();
            line = default;
        }
        else if (!TryReadSplitLine(ref reader, max, out line))
        {
            return false;
        }

        if (!line.IsEmpty && line[^1] == (byte)'\r')
        {
            line = line[..^1];
        }

        if (line.Length > _limits.MaxHeaderLineBytes)
        {
            ThrowLineTooLong();
        }

        return true;
    }

    private bool TryReadSplitLine(ref SequenceReader<byte> reader, int max, out ReadOnlySpan<byte> line)
    {
        line = default;
        var start = reader.Position;
        if (!reader.TryAdvanceTo((byte)'\n', advancePastDelimiter: true))
        {
            if (reader.Remaining > max)
            {
                ThrowLineTooLong();
            }

            if (reader.Sequence.Length > _limits.MaxFrameBytes)
            {
                ThrowFrameTooLarge();
            }

            return false;
        }

        var piece = reader.Sequence.Slice(start, reader.Position);
        var length = (int)Math.Min(piece.Length - 1, int.MaxValue);
        if (length > max)
        {
            ThrowLineTooLong();
        }

        // Sized by the lines actually seen, not by the limit, which may be far larger than any real line.
        if (_splitLine is null || _splitLine.Length < length)
        {
            if (_splitLine is not null)
            {
                ArrayPool<byte>.Shared.Return(_splitLine);
            }

            _splitLine = ArrayPool<byte>.Shared.Rent(Math.Max(length, 256));
        }

        piece.Slice(0, length).CopyTo(_splitLine);
        line = _splitLine.AsSpan(0, length);
        return true;
    }

    // EOL = [CR] LF. Consumes every complete EOL at the reader's position.
    private static Match TrySkipEols(ref SequenceReader<byte> reader)
    {
        var matched = Match.No;
        while (reader.TryPeek(out var next))
        {
            if (next == (byte)'\n')
            {
                reader.Advance(1);
                matched = Match.Yes;
            }
            else if (next == (byte)'\r')
            {
                if (!reader.TryPeek(1, out var lf))
                {
                    return matched == Match.Yes ? Match.Yes : Match.Incomplete;
                }

                if (lf != (byte)'\n')
                {
                    StompProtocolException.Throw(StompErrorKind.InvalidLineEnding, "CR not followed by LF between frames");
                }

                reader.Advance(2);
                matched = Match.Yes;
            }
            else
            {
                break;
            }
        }

        return matched;
    }

    // The grammar's trailing *( EOL ): complete EOLs already here belong to the frame. Anything odd is left
    // for the next call to report, so a valid frame is never lost to the bytes after it.
    private static void SkipTrailingEols(ref SequenceReader<byte> reader)
    {
        while (reader.TryPeek(out var next))
        {
            if (next == (byte)'\n')
            {
                reader.Advance(1);
            }
            else if (next == (byte)'\r' && reader.TryPeek(1, out var lf) && lf == (byte)'\n')
            {
                reader.Advance(2);
            }
            else
            {
                return;
            }
        }
    }

    private enum Match : byte
    {
        No,
        Yes,
        Incomplete,
    }

    private string CommandName => Encoding.ASCII.GetString(StompCommands.GetName(_command));

    private void ThrowLineTooLong() =>
        StompProtocolException.Throw(StompErrorKind.HeaderLineTooLong, $"header line too long: the limit is {_limits.MaxHeaderLineBytes} bytes");

    private void ThrowFrameTooLarge() =>
        StompProtocolException.Throw(StompErrorKind.FrameTooLarge, $"frame too large: the limit is {_limits.MaxFrameBytes} bytes");

    private void ThrowBodyTooLarge() =>
        StompProtocolException.Throw(StompErrorKind.BodyTooLarge, $"body too large: the limit is {_limits.MaxBodyBytes} bytes");

    private static void ThrowInvalidContentLength(ReadOnlySpan<byte> text) =>
        StompProtocolException.Throw(StompErrorKind.InvalidContentLength, $"invalid content-length '{Show(text)}': expected a non-negative decimal integer");

    // Error messages quote input; keep it short and printable so it is safe in a header.
    private static string Show(ReadOnlySpan<byte> text)
    {
        var shown = text.Length > 40 ? text[..40] : text;
        var chars = new char[shown.Length];
        for (var i = 0; i < shown.Length; i++)
        {
            chars[i] = shown[i] is >= 0x20 and < 0x7F and not (byte)'\\' and not (byte)':' ? (char)shown[i] : '?';
        }

        return text.Length > 40 ? new string(chars) + "..." : new string(chars);
    }
}
