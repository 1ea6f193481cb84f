using System.Buffers;
using System.Text;

namespace Broker.Stomp.Tests.TestHelpers;

/// <summary>Builds inputs for the parser: contiguous and multi-segment <see cref="ReadOnlySequence{T}"/>s.</summary>
internal static class Sequences
{
    /// <summary>UTF-8 bytes of <paramref name="text"/>; write NUL as "\0" and the spec's "^@" is not special.</summary>
    public static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    /// <summary>A sequence whose segments are exactly <paramref name="pieces"/> (empty pieces make empty segments).</summary>
    public static ReadOnlySequence<byte> FromPieces(params ReadOnlyMemory<byte>[] pieces) => FromPieces((IReadOnlyList<ReadOnlyMemory<byte>>)pieces);

    /// <summary>A sequence whose segments are exactly <paramref name="pieces"/> (empty pieces make empty segments).</summary>
    public static ReadOnlySequence<byte> FromPieces(IReadOnlyList<ReadOnlyMemory<byte>> pieces)
    {
        if (pieces.Count == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        var first = new Segment(pieces[0], 0);
        var last = first;
        for (var i = 1; i < pieces.Count; i++)
        {
            last = last.Append(pieces[i]);
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    /// <summary>Every byte in its own segment.</summary>
    public static ReadOnlySequence<byte> OneByteSegments(byte[] data) => OneByteSegments(data, withEmptySegments: false);

    /// <summary>Every byte in its own segment, optionally with an empty segment between each pair.</summary>
    public static ReadOnlySequence<byte> OneByteSegments(byte[] data, bool withEmptySegments)
    {
        var pieces = new List<ReadOnlyMemory<byte>>(data.Length * 2);
        for (var i = 0; i < data.Length; i++)
        {
            pieces.Add(data.AsMemory(i, 1));
            if (withEmptySegments)
            {
                pieces.Add(ReadOnlyMemory<byte>.Empty);
            }
        }

        return FromPieces(pieces);
    }

    /// <summary>Two segments: <c>data[..at]</c> and <c>data[at..]</c>.</summary>
    public static ReadOnlySequence<byte> SplitAt(byte[] data, int at) =>
        FromPieces(data.AsMemory(0, at), data.AsMemory(at));

    /// <summary>Segments of random lengths (1..maxPiece).</summary>
    public static ReadOnlySequence<byte> RandomPieces(byte[] data, Random random, int maxPiece)
    {
        var pieces = new List<ReadOnlyMemory<byte>>();
        var at = 0;
        while (at < data.Length)
        {
            var length = Math.Min(random.Next(1, maxPiece + 1), data.Length - at);
            pieces.Add(data.AsMemory(at, length));
            at += length;
        }

        return FromPieces(pieces);
    }

    /// <summary>Hex dump for failure messages.</summary>
    public static string Hex(ReadOnlySpan<byte> data) => Convert.ToHexString(data);

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
