using System.Buffers;

namespace Broker.Stomp.Internal;

/// <summary>How header names and values are escaped on the wire for a given command and version.</summary>
internal enum EscapeMode : byte
{
    /// <summary>CONNECT, STOMP, CONNECTED: written raw; CR and LF cannot be represented.</summary>
    None,

    /// <summary>STOMP 1.0 has no escaping, but a raw CR or LF would inject headers: write them as \r and \n.</summary>
    LineBreaksOnly,

    /// <summary>STOMP 1.1: \n \c \\ (a CR is written raw).</summary>
    V11,

    /// <summary>STOMP 1.2: \r \n \c \\.</summary>
    V12,
}

/// <summary>Header escaping both ways (STOMP 1.2, "Value Encoding").</summary>
internal static class HeaderEscaping
{
    private static readonly SearchValues<byte> SpecialV12 = SearchValues.Create("\r\n:\\"u8);
    private static readonly SearchValues<byte> SpecialV11 = SearchValues.Create("\n:\\"u8);
    private static readonly SearchValues<byte> LineBreaks = SearchValues.Create("\r\n"u8);

    public static EscapeMode GetMode(StompCommand command, StompVersion version) =>
        !StompCommands.UsesEscaping(command) ? EscapeMode.None
        : version switch
        {
            StompVersion.V1_0 => EscapeMode.LineBreaksOnly,
            StompVersion.V1_1 => EscapeMode.V11,
            _ => EscapeMode.V12,
        };

    /// <summary>Whether the parser decodes escapes for this command in this version.</summary>
    public static bool Decodes(StompCommand command, StompVersion version) =>
        version != StompVersion.V1_0 && StompCommands.UsesEscaping(command);

    /// <summary>Bytes <paramref name="source"/> takes once escaped.</summary>
    public static int GetEncodedLength(ReadOnlySpan<byte> source, EscapeMode mode)
    {
        var special = Special(mode);
        if (special is null)
        {
            return source.Length;
        }

        var length = source.Length;
        var at = source.IndexOfAny(special);
        while (at >= 0)
        {
            length++;
            source = source[(at + 1)..];
            at = source.IndexOfAny(special);
        }

        return length;
    }

    /// <summary>Writes <paramref name="source"/> escaped into <paramref name="destination"/>; returns the bytes written.</summary>
    public static int Encode(ReadOnlySpan<byte> source, Span<byte> destination, EscapeMode mode)
    {
        var special = Special(mode);
        if (special is null)
        {
            if (source.IndexOfAny(LineBreaks) >= 0)
            {
                throw new ArgumentException("CONNECT, STOMP and CONNECTED headers are not escaped and cannot hold CR or LF.", nameof(source));
            }

            source.CopyTo(destination);
            return source.Length;
        }

        var written = 0;
        while (true)
        {
            var at = source.IndexOfAny(special);
            if (at < 0)
            {
                source.CopyTo(destination[written..]);
                return written + source.Length;
            }

            source[..at].CopyTo(destination[written..]);
            written += at;
            destination[written++] = (byte)'\\';
            destination[written++] = source[at] switch
            {
                (byte)'\r' => (byte)'r',
                (byte)'\n' => (byte)'n',
                (byte)':' => (byte)'c',
                _ => (byte)'\\',
            };
            source = source[(at + 1)..];
        }
    }

    /// <summary>
    /// Decodes escapes from <paramref name="source"/> into <paramref name="destination"/> (at least as long);
    /// returns the bytes written. An escape the version does not define is a fatal protocol error.
    /// </summary>
    public static int Decode(ReadOnlySpan<byte> source, Span<byte> destination, StompVersion version)
    {
        var written = 0;
        while (true)
        {
            var at = source.IndexOf((byte)'\\');
            if (at < 0)
            {
                source.CopyTo(destination[written..]);
                return written + source.Length;
            }

            source[..at].CopyTo(destination[written..]);
            written += at;
            if (at + 1 == source.Length)
            {
                StompProtocolException.Throw(StompErrorKind.UndefinedEscape, "undefined escape sequence: a header ends with '\\'");
            }

            destination[written++] = source[at + 1] switch
            {
                (byte)'n' => (byte)'\n',
                (byte)'c' => (byte)':',
                (byte)'\\' => (byte)'\\',
                (byte)'r' when version >= StompVersion.V1_2 => (byte)'\r',
                var other => ThrowUndefinedEscape(other, version),
            };
            source = source[(at + 2)..];
        }
    }

    private static SearchValues<byte>? Special(EscapeMode mode) => mode switch
    {
        EscapeMode.V12 => SpecialV12,
        EscapeMode.V11 => SpecialV11,
        EscapeMode.LineBreaksOnly => LineBreaks,
        _ => null,
    };

    private static byte ThrowUndefinedEscape(byte escaped, StompVersion version)
    {
        var shown = escaped is >= 0x21 and < 0x7F ? ((char)escaped).ToString() : $"0x{escaped:X2}";
        StompProtocolException.Throw(
            StompErrorKind.UndefinedEscape,
            $"undefined escape sequence '\\{shown}' in a header (STOMP {version.ToHeaderValue()} defines \\n \\c \\\\{(version >= StompVersion.V1_2 ? " \\r" : "")})");
        return 0;
    }
}
