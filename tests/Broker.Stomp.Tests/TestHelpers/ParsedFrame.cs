using System.Buffers;
using System.Text;

namespace Broker.Stomp.Tests.TestHelpers;

/// <summary>A parsed frame copied out of the parser (a <see cref="StompFrame"/> is only a view until the next call).</summary>
internal sealed class ParsedFrame
{
    public ParsedFrame(StompCommand command, IReadOnlyList<(string Name, string Value)> headers, byte[] body)
    {
        Command = command;
        Headers = headers;
        Body = body;
    }

    public StompCommand Command { get; }

    public IReadOnlyList<(string Name, string Value)> Headers { get; }

    public byte[] Body { get; }

    public string BodyText => Encoding.UTF8.GetString(Body);

    public static ParsedFrame From(StompFrame frame)
    {
        var headers = new List<(string, string)>(frame.Headers.Count);
        for (var i = 0; i < frame.Headers.Count; i++)
        {
            headers.Add((Encoding.UTF8.GetString(frame.Headers.GetName(i)), Encoding.UTF8.GetString(frame.Headers.GetValue(i))));
        }

        return new ParsedFrame(frame.Command, headers, frame.Body.ToArray());
    }

    /// <summary>The first difference between two frames, or null when they are equal.</summary>
    public static string? Difference(ParsedFrame expected, ParsedFrame actual)
    {
        if (expected.Command != actual.Command)
        {
            return $"command: expected {expected.Command}, got {actual.Command}";
        }

        if (expected.Headers.Count != actual.Headers.Count)
        {
            return $"{expected.Command}: expected {expected.Headers.Count} headers [{Show(expected.Headers)}], got {actual.Headers.Count} [{Show(actual.Headers)}]";
        }

        for (var i = 0; i < expected.Headers.Count; i++)
        {
            if (expected.Headers[i] != actual.Headers[i])
            {
                return $"{expected.Command}: header {i}: expected {Show(expected.Headers[i])}, got {Show(actual.Headers[i])}";
            }
        }

        if (!expected.Body.AsSpan().SequenceEqual(actual.Body))
        {
            return $"{expected.Command}: body: expected {Sequences.Hex(expected.Body)}, got {Sequences.Hex(actual.Body)}";
        }

        return null;
    }

    /// <summary>The first difference between two frame lists, or null when they are equal.</summary>
    public static string? Difference(IReadOnlyList<ParsedFrame> expected, IReadOnlyList<ParsedFrame> actual)
    {
        for (var i = 0; i < Math.Min(expected.Count, actual.Count); i++)
        {
            if (Difference(expected[i], actual[i]) is { } difference)
            {
                return $"frame {i}: {difference}";
            }
        }

        return expected.Count == actual.Count ? null : $"expected {expected.Count} frames, got {actual.Count}";
    }

    public override string ToString() => $"{Command} [{Show(Headers)}] body {Sequences.Hex(Body)}";

    private static string Show(IEnumerable<(string Name, string Value)> headers) => string.Join(", ", headers.Select(Show));

    private static string Show((string Name, string Value) header) =>
        $"'{Escape(header.Name)}':'{Escape(header.Value)}'";

    private static string Escape(string text) => text.Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
