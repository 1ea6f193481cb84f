using System.Buffers;
using System.Text;
using Broker.Stomp.Tests.TestHelpers;

namespace Broker.Stomp.Tests;

/// <summary>
/// Fixed-seed fuzzing of mutated valid frames. The parser may only ever throw <see cref="StompProtocolException"/>,
/// and it must reach the same result whether the input comes whole, in one-byte segments or a byte at a time.
/// Any failure names the seed, the iteration and the input in hex so it can be replayed.
/// </summary>
public sealed class FuzzTests
{
    private const int Seed = 5_150_777;
    private const int Iterations = 5000;

    private static readonly byte[][] Interesting =
    [
        [0], [(byte)'\n'], [(byte)'\r'], [(byte)':'], [(byte)'\\'], [0xFF], [0xC3], [0x80], [(byte)' '], [(byte)'\r', (byte)'\n'],
        [0xED, 0xA0, 0x80], [0xF0, 0x9F], [0xC0, 0xAF], [(byte)'\\', (byte)'t'], [(byte)'\\', (byte)'r'],
    ];

    private static readonly string[] ContentLengths =
    [
        "1073741824", "99999999999", "9999999999", "9223372036854775808", "99999999999999999999", "2147483647", "2147483648", "4194305", "4194304", "-1", "", "abc", "0",
        "1", "5", "00", " 3", "3 ",
    ];

    [Fact]
    public void Mutated_frames_only_ever_throw_StompProtocolException_and_parse_the_same_in_any_chunking()
    {
        var random = new Random(Seed);
        var corpus = Corpus(random);
        var kinds = new HashSet<StompErrorKind>();
        var parsedSome = 0;

        for (var iteration = 0; iteration < Iterations; iteration++)
        {
            var input = Mutate(random, corpus);
            var version = (StompVersion)random.Next(10, 13);
            var context = $"seed {Seed}, iteration {iteration}, {version}, input {Sequences.Hex(input)}";

            var whole = Run(() => WholeOutcome(new ReadOnlySequence<byte>(input), version, null), context);
            var segments = Run(() => WholeOutcome(Sequences.OneByteSegments(input), version, null), context);
            var growing = Run(() => GrowingOutcome(input, version, null), context);

            Assert.True(whole == segments, $"whole: {whole}; one-byte segments: {segments}; {context}");
            Assert.True(whole == growing, $"whole: {whole}; byte by byte: {growing}; {context}");

            if (whole.Error is { } kind)
            {
                kinds.Add(kind);
            }

            if (whole.Frames.Length > 0)
            {
                parsedSome++;
            }
        }

        // The mutations must reach the error paths this test is meant to exercise, and leave some frames valid.
        StompErrorKind[] expected =
        [
            StompErrorKind.UnknownCommand, StompErrorKind.HeaderWithoutColon, StompErrorKind.UndefinedEscape,
            StompErrorKind.InvalidUtf8, StompErrorKind.InvalidContentLength, StompErrorKind.MissingNul,
            StompErrorKind.BodyNotAllowed, StompErrorKind.BodyTooLarge, StompErrorKind.InvalidLineEnding,
            StompErrorKind.EmptyHeaderName,
        ];
        Assert.All(expected, k => Assert.True(kinds.Contains(k), $"seed {Seed}: no input ended in {k}"));
        Assert.True(parsedSome > Iterations / 10, $"seed {Seed}: only {parsedSome} inputs had a valid frame");
    }

    [Fact]
    public void Mutated_frames_under_tight_limits_only_ever_throw_StompProtocolException()
    {
        var limits = new StompParserLimits { MaxFrameBytes = 100, MaxBodyBytes = 64, MaxHeaders = 4, MaxHeaderLineBytes = 24 };
        var random = new Random(Seed + 1);
        var corpus = Corpus(random);
        var kinds = new HashSet<StompErrorKind>();

        for (var iteration = 0; iteration < Iterations / 2; iteration++)
        {
            var input = Mutate(random, corpus);
            var version = (StompVersion)random.Next(10, 13);
            var context = $"seed {Seed + 1}, iteration {iteration}, {version}, input {Sequences.Hex(input)}";

            var whole = Run(() => WholeOutcome(new ReadOnlySequence<byte>(input), version, limits), context);
            Run(() => WholeOutcome(Sequences.OneByteSegments(input), version, limits), context);
            Run(() => GrowingOutcome(input, version, limits), context);
            if (whole.Error is { } kind)
            {
                kinds.Add(kind);
            }
        }

        StompErrorKind[] expected = [StompErrorKind.FrameTooLarge, StompErrorKind.BodyTooLarge, StompErrorKind.TooManyHeaders, StompErrorKind.HeaderLineTooLong];
        Assert.All(expected, k => Assert.True(kinds.Contains(k), $"seed {Seed + 1}: no input ended in {k}"));
    }

    [Fact]
    public void Random_bytes_only_ever_throw_StompProtocolException()
    {
        var random = new Random(Seed + 2);
        byte[] alphabet = [0, (byte)'\n', (byte)'\r', (byte)':', (byte)'\\', (byte)'n', (byte)'c', (byte)'S', 0xFF, 0xC3, 0xA9, (byte)'A'];

        for (var iteration = 0; iteration < 1000; iteration++)
        {
            var input = new byte[random.Next(1, 80)];
            for (var i = 0; i < input.Length; i++)
            {
                input[i] = random.Next(2) == 0 ? alphabet[random.Next(alphabet.Length)] : (byte)random.Next(256);
            }

            // Often start with a real command so the header and body rules are reached.
            if (random.Next(2) == 0)
            {
                input = [.. Encoding.ASCII.GetBytes(random.Next(2) == 0 ? "SEND\n" : "SUBSCRIBE\n"), .. input];
            }

            var context = $"seed {Seed + 2}, iteration {iteration}, input {Sequences.Hex(input)}";
            var whole = Run(() => WholeOutcome(new ReadOnlySequence<byte>(input), StompVersion.V1_2, null), context);
            var growing = Run(() => GrowingOutcome(input, StompVersion.V1_2, null), context);
            Assert.True(whole == growing, $"whole: {whole}; byte by byte: {growing}; {context}");
        }
    }

    private static List<byte[]> Corpus(Random random)
    {
        var corpus = SpecExamples.All.Select(e => e.Bytes).ToList();
        var frames = new RandomFrames(random.Next());
        while (corpus.Count < 100)
        {
            var (wire, _) = frames.Next(StompVersion.V1_2);
            if (wire.Length <= 400)
            {
                corpus.Add(wire);
            }
        }

        return corpus;
    }

    private static byte[] Mutate(Random random, List<byte[]> corpus)
    {
        var data = corpus[random.Next(corpus.Count)].ToList();
        var mutations = random.Next(1, 5);
        for (var m = 0; m < mutations; m++)
        {
            switch (random.Next(11))
            {
                case 0 when data.Count > 0:
                    data[random.Next(data.Count)] = (byte)random.Next(256);
                    break;
                case 1 when data.Count > 0:
                    var at = random.Next(data.Count);
                    data.RemoveAt(at);
                    data.InsertRange(at, Interesting[random.Next(Interesting.Length)]);
                    break;
                case 2 when data.Count > 0:
                    data.RemoveRange(random.Next(data.Count), 1);
                    break;
                case 3:
                    data = data.Take(random.Next(data.Count + 1)).ToList();
                    break;
                case 4:
                    DuplicateHeaderLine(random, data);
                    break;
                case 5:
                    SetContentLength(data, ContentLengths[random.Next(ContentLengths.Length)]);
                    break;
                case 6:
                    data.InsertRange(random.Next(HeaderEnd(data) + 1), Interesting[random.Next(5, Interesting.Length)]);
                    break;
                case 7:
                    data.AddRange(corpus[random.Next(corpus.Count)]);
                    break;
                case 8:
                    data.InsertRange(random.Next(data.Count + 1), Encoding.ASCII.GetBytes(random.Next(3) switch { 0 => "\n", 1 => "\r\n", _ => "\r" }));
                    break;
                case 9:
                    var junk = new byte[random.Next(1, 8)];
                    random.NextBytes(junk);
                    data.InsertRange(random.Next(data.Count + 1), junk);
                    break;
                default:
                    data.InsertRange(random.Next(HeaderEnd(data) + 1), Interesting[random.Next(Interesting.Length)]);
                    break;
            }
        }

        return [.. data];
    }

    private static int HeaderEnd(List<byte> data)
    {
        for (var i = 0; i + 1 < data.Count; i++)
        {
            if (data[i] == '\n' && (data[i + 1] == '\n' || (data[i + 1] == '\r' && i + 2 < data.Count && data[i + 2] == '\n')))
            {
                return i;
            }
        }

        return data.Count;
    }

    private static void DuplicateHeaderLine(Random random, List<byte> data)
    {
        var first = data.IndexOf((byte)'\n');
        var end = HeaderEnd(data);
        if (first < 0 || first >= end)
        {
            return;
        }

        var start = random.Next(first + 1, end + 1);
        while (start > first + 1 && data[start - 1] != '\n')
        {
            start--;
        }

        var stop = data.IndexOf((byte)'\n', start);
        if (stop < 0)
        {
            return;
        }

        var line = data.GetRange(start, stop - start + 1);
        data.InsertRange(start, line);
    }

    private static void SetContentLength(List<byte> data, string value)
    {
        var text = Encoding.Latin1.GetString([.. data]);
        var at = text.IndexOf("content-length:", StringComparison.Ordinal);
        byte[] replacement = Encoding.ASCII.GetBytes("content-length:" + value + "\n");
        if (at >= 0)
        {
            var stop = text.IndexOf('\n', at);
            data.RemoveRange(at, (stop < 0 ? text.Length : stop + 1) - at);
            data.InsertRange(at, replacement);
            return;
        }

        var first = data.IndexOf((byte)'\n');
        data.InsertRange(first < 0 ? data.Count : first + 1, replacement);
    }

    private static Outcome Run(Func<Outcome> parse, string context)
    {
        try
        {
            return parse();
        }
        catch (Exception e) when (e is not StompProtocolException)
        {
            Assert.Fail($"{e.GetType().Name}: {e.Message}; {context}\n{e.StackTrace}");
            throw;
        }
    }

    private static Outcome WholeOutcome(ReadOnlySequence<byte> input, StompVersion version, StompParserLimits? limits)
    {
        using var parser = new StompParser(limits) { Version = version };
        var frames = new List<string>();
        try
        {
            while (parser.TryParse(ref input, out var frame))
            {
                AddFrame(frames, frame);
            }
        }
        catch (StompProtocolException e)
        {
            return new Outcome(Describe(frames), e.Kind, -1);
        }

        return new Outcome(Describe(frames), null, input.Length);
    }

    private static Outcome GrowingOutcome(byte[] data, StompVersion version, StompParserLimits? limits)
    {
        using var parser = new StompParser(limits) { Version = version };
        var frames = new List<string>();
        var start = 0;
        try
        {
            for (var end = 1; end <= data.Length; end++)
            {
                var input = new ReadOnlySequence<byte>(data, start, end - start);
                while (parser.TryParse(ref input, out var frame))
                {
                    AddFrame(frames, frame);
                    start = end - (int)input.Length;
                }

                if (input.Length != end - start)
                {
                    Assert.Fail("TryParse returned false but moved the input");
                }
            }
        }
        catch (StompProtocolException e)
        {
            return new Outcome(Describe(frames), e.Kind, -1);
        }

        return new Outcome(Describe(frames), null, data.Length - start);
    }

    private static void AddFrame(List<string> frames, StompFrame frame)
    {
        if (!frame.IsHeartBeat)
        {
            frames.Add(ParsedFrame.From(frame).ToString());
        }
    }

    private static string Describe(List<string> frames) => string.Join(" | ", frames);

    private readonly record struct Outcome(string Frames, StompErrorKind? Error, long Left)
    {
        public override string ToString() => $"frames [{Frames}], {(Error is { } kind ? $"error {kind}" : $"incomplete with {Left} bytes left")}";
    }
}
