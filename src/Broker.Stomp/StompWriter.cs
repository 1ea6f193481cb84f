using System.Buffers;
using System.Buffers.Text;
using System.Text;
using Broker.Stomp.Internal;

namespace Broker.Stomp;

/// <summary>
/// Encodes frames into an <see cref="IBufferWriter{T}"/>: sized once, written with UTF-8 literals, no intermediate
/// strings. Headers are escaped as the command and version require; every body gets a <c>content-length</c>.
/// </summary>
public static class StompWriter
{
    /// <summary>Writes a whole frame. A <c>content-length</c> header in <paramref name="frame"/> is replaced by the body's real length.</summary>
    public static void Write(StompFrame frame, IBufferWriter<byte> output, StompVersion version)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (frame.IsHeartBeat)
        {
            WriteHeartBeat(output);
            return;
        }

        WriteCommand(output, frame.Command);
        var headers = frame.Headers;
        for (var i = 0; i < headers.Count; i++)
        {
            var name = headers.GetName(i);
            if (!name.SequenceEqual(StompHeaderNames.ContentLength))
            {
                WriteHeader(output, frame.Command, version, name, headers.GetValue(i));
            }
        }

        WriteBody(output, frame.Command, frame.Body);
    }

    /// <summary>A heart-beat: one LF.</summary>
    public static void WriteHeartBeat(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        output.GetSpan(1)[0] = (byte)'\n';
        output.Advance(1);
    }

    /// <summary>The command line.</summary>
    public static void WriteCommand(IBufferWriter<byte> output, StompCommand command)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (command == StompCommand.HeartBeat)
        {
            throw new ArgumentException("A heart-beat is not a command; use WriteHeartBeat.", nameof(command));
        }

        var name = StompCommands.GetName(command);
        var span = output.GetSpan(name.Length + 1);
        name.CopyTo(span);
        span[name.Length] = (byte)'\n';
        output.Advance(name.Length + 1);
    }

    /// <summary>One header line, escaped for <paramref name="command"/> in <paramref name="version"/>.</summary>
    public static void WriteHeader(IBufferWriter<byte> output, StompCommand command, StompVersion version, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) =>
        WriteHeader(output, HeaderEscaping.GetMode(command, version), name, value);

    /// <summary>One header line from strings, escaped for <paramref name="command"/> in <paramref name="version"/>.</summary>
    public static void WriteHeader(IBufferWriter<byte> output, StompCommand command, StompVersion version, string name, string value)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(value);
        var length = Encoding.UTF8.GetByteCount(name) + Encoding.UTF8.GetByteCount(value);
        byte[]? rented = null;
        var utf8 = length <= 512 ? stackalloc byte[512] : (rented = ArrayPool<byte>.Shared.Rent(length));
        try
        {
            var nameLength = Encoding.UTF8.GetBytes(name, utf8);
            var valueLength = Encoding.UTF8.GetBytes(value, utf8[nameLength..]);
            WriteHeader(output, command, version, utf8[..nameLength], utf8.Slice(nameLength, valueLength));
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>A header whose value is a non-negative integer.</summary>
    public static void WriteHeader(IBufferWriter<byte> output, ReadOnlySpan<byte> name, long value)
    {
        ArgumentNullException.ThrowIfNull(output);
        var span = output.GetSpan(name.Length + 22);
        name.CopyTo(span);
        span[name.Length] = (byte)':';
        Utf8Formatter.TryFormat(value, span[(name.Length + 1)..], out var digits);
        span[name.Length + 1 + digits] = (byte)'\n';
        output.Advance(name.Length + digits + 2);
    }

    /// <summary>
    /// Ends the frame: for SEND, MESSAGE and ERROR a <c>content-length</c> header, the blank line, the body and NUL;
    /// for every other command the blank line and NUL (a body there is an error).
    /// </summary>
    public static void WriteBody(IBufferWriter<byte> output, StompCommand command, ReadOnlySequence<byte> body)
    {
        if (!BeginBody(output, command, body.Length, nameof(body)))
        {
            return;
        }

        foreach (var segment in body)
        {
            output.Write(segment.Span);
        }

        WriteNul(output);
    }

    /// <summary>Like <see cref="WriteBody(IBufferWriter{byte}, StompCommand, ReadOnlySequence{byte})"/> for a single span.</summary>
    public static void WriteBody(IBufferWriter<byte> output, StompCommand command, ReadOnlySpan<byte> body)
    {
        if (!BeginBody(output, command, body.Length, nameof(body)))
        {
            return;
        }

        output.Write(body);
        WriteNul(output);
    }

    // Writes what comes before a body: content-length and the blank line; or, for a bodiless command, the whole end
    // of the frame (false: nothing more to write).
    private static bool BeginBody(IBufferWriter<byte> output, StompCommand command, long bodyLength, string bodyParameter)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (!StompCommands.MayHaveBody(command))
        {
            if (bodyLength != 0)
            {
                throw new ArgumentException($"{command} frames may not have a body.", bodyParameter);
            }

            WriteEnd(output);
            return false;
        }

        WriteHeader(output, StompHeaderNames.ContentLength, bodyLength);
        WriteBlankLine(output);
        return true;
    }

    /// <summary>Ends a frame that has no body: the blank line and NUL.</summary>
    public static void WriteEnd(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var span = output.GetSpan(2);
        span[0] = (byte)'\n';
        span[1] = 0;
        output.Advance(2);
    }

    internal static void WriteHeader(IBufferWriter<byte> output, EscapeMode mode, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        ArgumentNullException.ThrowIfNull(output);
        var nameLength = HeaderEscaping.GetEncodedLength(name, mode);
        var valueLength = HeaderEscaping.GetEncodedLength(value, mode);
        var span = output.GetSpan(nameLength + valueLength + 2);
        var at = HeaderEscaping.Encode(name, span, mode);
        span[at++] = (byte)':';
        at += HeaderEscaping.Encode(value, span[at..], mode);
        span[at++] = (byte)'\n';
        output.Advance(at);
    }

    private static void WriteBlankLine(IBufferWriter<byte> output)
    {
        output.GetSpan(1)[0] = (byte)'\n';
        output.Advance(1);
    }

    private static void WriteNul(IBufferWriter<byte> output)
    {
        output.GetSpan(1)[0] = 0;
        output.Advance(1);
    }
}
