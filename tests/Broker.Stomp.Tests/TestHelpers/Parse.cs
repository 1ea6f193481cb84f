using System.Buffers;

namespace Broker.Stomp.Tests.TestHelpers;

/// <summary>Drives a <see cref="StompParser"/> in the ways a connection does.</summary>
internal static class Parse
{
    /// <summary>Parses exactly one frame from <paramref name="data"/> (1.2) and requires it to consume everything.</summary>
    public static ParsedFrame Single(byte[] data, StompVersion version = StompVersion.V1_2)
    {
        using var parser = new StompParser { Version = version };
        var input = new ReadOnlySequence<byte>(data);
        Assert.True(parser.TryParse(ref input, out var frame), "expected a complete frame");
        Assert.True(input.IsEmpty, $"expected the frame to consume all input; {input.Length} bytes left");
        return ParsedFrame.From(frame);
    }

    /// <summary>Parses one frame from a string (UTF-8).</summary>
    public static ParsedFrame Single(string text, StompVersion version = StompVersion.V1_2) => Single(Sequences.Utf8(text), version);

    /// <summary>Every frame in <paramref name="input"/> until the parser wants more; <paramref name="input"/> keeps the rest.</summary>
    public static List<ParsedFrame> All(StompParser parser, ref ReadOnlySequence<byte> input)
    {
        var frames = new List<ParsedFrame>();
        while (parser.TryParse(ref input, out var frame))
        {
            frames.Add(ParsedFrame.From(frame));
        }

        return frames;
    }

    /// <summary>Every frame in <paramref name="input"/>; returns the unconsumed byte count in <paramref name="left"/>.</summary>
    public static List<ParsedFrame> All(ReadOnlySequence<byte> input, out long left, StompVersion version = StompVersion.V1_2, StompParserLimits? limits = null)
    {
        using var parser = new StompParser(limits) { Version = version };
        var frames = All(parser, ref input);
        left = input.Length;
        return frames;
    }

    /// <summary>
    /// Feeds <paramref name="data"/> one byte at a time into a growing buffer, as a socket that delivers a byte per read
    /// would; after a false return the same start is passed again with one more byte (the parser resumes).
    /// Asserts that a false return leaves the input untouched.
    /// </summary>
    public static List<ParsedFrame> Growing(byte[] data, out long left, StompVersion version = StompVersion.V1_2, StompParserLimits? limits = null)
    {
        using var parser = new StompParser(limits) { Version = version };
        var frames = new List<ParsedFrame>();
        var start = 0;
        for (var end = 1; end <= data.Length; end++)
        {
            var input = new ReadOnlySequence<byte>(data, start, end - start);
            while (true)
            {
                var before = input;
                if (!parser.TryParse(ref input, out var frame))
                {
                    if (!before.Start.Equals(input.Start) || before.Length != input.Length)
                    {
                        Assert.Fail($"TryParse returned false but moved the input at byte {end}");
                    }

                    break;
                }

                frames.Add(ParsedFrame.From(frame));
                start = end - (int)input.Length;
            }
        }

        left = data.Length - start;
        return frames;
    }

    /// <summary>The frames without the heart-beat pseudo-frames.</summary>
    public static List<ParsedFrame> WithoutHeartBeats(this IEnumerable<ParsedFrame> frames) =>
        frames.Where(f => f.Command != StompCommand.HeartBeat).ToList();

    /// <summary>Parses <paramref name="data"/> whole and expects a <see cref="StompProtocolException"/>.</summary>
    public static StompProtocolException Error(byte[] data, StompVersion version = StompVersion.V1_2, StompParserLimits? limits = null)
    {
        using var parser = new StompParser(limits) { Version = version };
        var input = new ReadOnlySequence<byte>(data);
        return Assert.Throws<StompProtocolException>(() =>
        {
            while (parser.TryParse(ref input, out _))
            {
            }
        });
    }

    /// <summary>Parses a string whole and expects a <see cref="StompProtocolException"/>.</summary>
    public static StompProtocolException Error(string text, StompVersion version = StompVersion.V1_2, StompParserLimits? limits = null) =>
        Error(Sequences.Utf8(text), version, limits);
}
