using System.Buffers;
using Broker.Stomp.Tests.TestHelpers;

namespace Broker.Stomp.Tests;

/// <summary>
/// Randomized (fixed seed, printed on failure) write-then-parse: random commands, headers with ':', '\', CR, LF and
/// non-ASCII, bodies with NUL; parsed whole, in one-byte segments, split at every point, and fed a byte at a time.
/// </summary>
public sealed class RoundTripTests
{
    private const int Seed = 1_302_2024;
    private const int FramesPerVersion = 500;

    [Theory]
    [InlineData(StompVersion.V1_2)]
    [InlineData(StompVersion.V1_1)]
    [InlineData(StompVersion.V1_0)]
    public void Random_frames_round_trip(StompVersion version)
    {
        var seed = Seed + (int)version;
        var frames = new RandomFrames(seed);
        var seen = new HashSet<string>();

        for (var i = 0; i < FramesPerVersion; i++)
        {
            var (wire, expected) = frames.Next(version);
            Note(seen, expected);
            var context = $"seed {seed}, {version}, frame {i}, wire {Sequences.Hex(wire)}";

            var whole = Parse.All(new ReadOnlySequence<byte>(wire), out var left, version);
            AssertOne(expected, whole, left, $"whole: {context}");

            var segments = Parse.All(Sequences.OneByteSegments(wire), out left, version);
            AssertOne(expected, segments, left, $"one-byte segments: {context}");

            var growing = Parse.Growing(wire, out left, version);
            AssertOne(expected, growing, left, $"byte by byte: {context}");

            if (i % 5 == 0)
            {
                for (var at = 0; at <= wire.Length; at++)
                {
                    var split = Parse.All(Sequences.SplitAt(wire, at), out left, version);
                    AssertOne(expected, split, left, $"split at {at}: {context}");
                }
            }
        }

        // The generator must have produced what this test claims to cover.
        string[] covered = version switch
        {
            StompVersion.V1_2 => ["CR", "LF", ":", "backslash", "non-ASCII", "NUL body", "repeated", "CONNECT"],
            StompVersion.V1_1 => ["LF", ":", "backslash", "non-ASCII", "NUL body", "repeated", "CONNECT"],
            _ => [":", "backslash", "non-ASCII", "NUL body", "repeated", "CONNECT"],
        };
        Assert.All(covered, c => Assert.True(seen.Contains(c), $"seed {seed}: no frame with {c}"));
    }

    private static void Note(HashSet<string> seen, ParsedFrame frame)
    {
        var text = string.Concat(frame.Headers.Select(h => h.Name + h.Value));
        if (text.Contains('\r', StringComparison.Ordinal))
        {
            seen.Add("CR");
        }

        if (text.Contains('\n', StringComparison.Ordinal))
        {
            seen.Add("LF");
        }

        if (frame.Headers.Any(h => h.Value.Contains(':', StringComparison.Ordinal)))
        {
            seen.Add(":");
        }

        if (text.Contains('\\', StringComparison.Ordinal))
        {
            seen.Add("backslash");
        }

        if (text.Contains("🙂", StringComparison.Ordinal) && text.Contains('é', StringComparison.Ordinal))
        {
            seen.Add("non-ASCII");
        }

        if (frame.Body.Contains((byte)0))
        {
            seen.Add("NUL body");
        }

        if (frame.Headers.Select(h => h.Name).Distinct().Count() < frame.Headers.Count)
        {
            seen.Add("repeated");
        }

        if (frame.Command is StompCommand.Connect or StompCommand.Connected && frame.Headers.Count > 0)
        {
            seen.Add("CONNECT");
        }
    }

    [Theory]
    [InlineData(StompVersion.V1_2)]
    [InlineData(StompVersion.V1_1)]
    public void Random_stream_with_heart_beats_between_frames_round_trips(StompVersion version)
    {
        var seed = Seed + 100 + (int)version;
        var frames = new RandomFrames(seed);
        var stream = new List<byte>();
        var expected = new List<ParsedFrame>();
        var startsWithEols = false;
        for (var i = 0; i < 300; i++)
        {
            if (frames.Random.Next(3) == 0)
            {
                startsWithEols |= i == 0;
                stream.AddRange(Sequences.Utf8(frames.Eols()));
            }

            var (wire, frame) = frames.Next(version);
            stream.AddRange(wire);
            expected.Add(frame);
        }

        stream.AddRange(Sequences.Utf8(frames.Eols()));
        var data = stream.ToArray();

        var whole = Parse.All(new ReadOnlySequence<byte>(data), out var left, version);
        Assert.True(left == 0, $"seed {seed}: {left} bytes left");
        Assert.True(startsWithEols == (whole[0].Command == StompCommand.HeartBeat), $"seed {seed}: leading heart-beat");
        Assert.True(ParsedFrame.Difference(expected, whole.WithoutHeartBeats()) is null, $"seed {seed}, whole: {ParsedFrame.Difference(expected, whole.WithoutHeartBeats())}");

        var chunked = Parse.All(Sequences.RandomPieces(data, new Random(seed), 64), out left, version);
        Assert.True(left == 0, $"seed {seed}: {left} bytes left");
        Assert.True(ParsedFrame.Difference(expected, chunked.WithoutHeartBeats()) is null, $"seed {seed}, chunked: {ParsedFrame.Difference(expected, chunked.WithoutHeartBeats())}");

        var growing = Parse.Growing(data, out left, version);
        Assert.True(left == 0, $"seed {seed}: {left} bytes left");
        Assert.True(ParsedFrame.Difference(expected, growing.WithoutHeartBeats()) is null, $"seed {seed}, byte by byte: {ParsedFrame.Difference(expected, growing.WithoutHeartBeats())}");
        Assert.Contains(growing, f => f.Command == StompCommand.HeartBeat);
    }

    private static void AssertOne(ParsedFrame expected, List<ParsedFrame> actual, long left, string context)
    {
        Assert.True(left == 0, $"{left} bytes left; {context}");
        Assert.True(actual.Count == 1, $"{actual.Count} frames; {context}");
        var difference = ParsedFrame.Difference(expected, actual[0]);
        Assert.True(difference is null, $"{difference}; {context}");
    }
}
