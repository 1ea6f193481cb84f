using System.Text;

namespace Broker.Stomp.Tests.TestHelpers;

/// <summary>Random frames the writer can encode for a version and the parser must give back unchanged.</summary>
internal sealed class RandomFrames
{
    // Pieces rather than chars, so surrogate pairs stay whole; escapes as text test that only real escapes are decoded.
    private static readonly string[] Plain = ["a", "b", "Z", "0", "9", "-", "/", ".", " ", "é", "漢", "🙂", "ß", "\t", ","];
    private static readonly string[] Special = [":", "\\", "\\n", "\\c", "\\\\", "\\r", "::"];
    private static readonly string[] LineBreaks = ["\r", "\n", "\r\n", "\n\r"];

    private static readonly StompCommand[] Commands = Enum.GetValues<StompCommand>().Where(c => c != StompCommand.HeartBeat).ToArray();

    private readonly Random _random;

    public RandomFrames(int seed) => _random = new Random(seed);

    public Random Random => _random;

    /// <summary>A random frame for <paramref name="version"/>: its wire bytes and what they must parse to.</summary>
    public (byte[] Wire, ParsedFrame Expected) Next(StompVersion version)
    {
        var command = Commands[_random.Next(Commands.Length)];

        // What can be represented: 1.2 everything; 1.1 no CR (written raw, an EOL's CR would eat it);
        // 1.0 and CONNECT/STOMP/CONNECTED are written raw, so no CR/LF anywhere and no ':' in names.
        var raw = version == StompVersion.V1_0 || !StompCommands.UsesEscaping(command);
        var allowCr = version == StompVersion.V1_2 && !raw;

        var headers = new List<(string, string)>();
        var count = _random.Next(0, 9);
        for (var i = 0; i < count; i++)
        {
            if (headers.Count > 0 && _random.Next(6) == 0)
            {
                // A repeated header with another value.
                headers.Add((headers[_random.Next(headers.Count)].Item1, Text(0, 12, raw, allowCr, isName: false)));
                continue;
            }

            string name;
            do
            {
                name = Text(1, 8, raw, allowCr, isName: true);
            }
            while (name == "content-length");

            headers.Add((name, Text(0, 16, raw, allowCr, isName: false)));
        }

        var body = StompCommands.MayHaveBody(command) ? Body() : [];

        using var builder = new FrameBuilder(command).WithBody(body);
        foreach (var (name, value) in headers)
        {
            builder.Header(name, value);
        }

        var wire = builder.Encode(version);
        if (StompCommands.MayHaveBody(command))
        {
            headers.Add(("content-length", body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        return (wire, new ParsedFrame(command, headers, body));
    }

    /// <summary>One or more EOLs, as a peer sends for heart-beats.</summary>
    public string Eols()
    {
        var builder = new StringBuilder();
        var count = _random.Next(1, 4);
        for (var i = 0; i < count; i++)
        {
            builder.Append(_random.Next(2) == 0 ? "\n" : "\r\n");
        }

        return builder.ToString();
    }

    private byte[] Body()
    {
        var length = _random.Next(8) switch
        {
            0 => 0,
            1 => _random.Next(1000, 3000),
            _ => _random.Next(1, 200),
        };
        var body = new byte[length];
        _random.NextBytes(body);
        for (var i = 0; i < length; i += _random.Next(1, 20))
        {
            body[i] = 0;
        }

        return body;
    }

    private string Text(int min, int max, bool raw, bool allowCr, bool isName)
    {
        var builder = new StringBuilder();
        var pieces = _random.Next(min, max + 1);
        for (var i = 0; i < pieces; i++)
        {
            var pick = _random.Next(10);
            string piece;
            if (pick < 6)
            {
                piece = Plain[_random.Next(Plain.Length)];
            }
            else if (pick < 8)
            {
                piece = Special[_random.Next(Special.Length)];
                if (raw && isName && piece.Contains(':', StringComparison.Ordinal))
                {
                    piece = "\\";
                }
            }
            else if (!raw)
            {
                piece = LineBreaks[_random.Next(LineBreaks.Length)];
                if (!allowCr)
                {
                    piece = "\n";
                }
            }
            else
            {
                piece = isName ? "x" : "\0";
            }

            builder.Append(piece);
        }

        return builder.ToString();
    }
}
