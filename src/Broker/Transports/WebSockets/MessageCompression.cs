using System.Buffers;

namespace Broker.Transports.WebSockets;

/// <summary>
/// RFC 7692 permessage-deflate, one message at a time: the broker always answers with both
/// <c>server_no_context_takeover</c> and <c>client_no_context_takeover</c>, so every message is a deflate stream of its
/// own and an idle connection holds no zlib state (kept between messages, it would be 40 KB to inflate and 256 KB to
/// deflate per connection).
/// </summary>
internal sealed class MessageInflater
{
    private const int WindowBits = 15; // the largest window decodes whatever window the client compressed with
    private const int MaxPooled = 16;

    // Decompressors are reset and reused across connections: creating one allocates ~40 KB of native memory.
    private static readonly Stack<MessageInflater> s_pool = new();
    private static readonly Lock s_poolLock = new();

    private Zlib.Stream _stream;

    private MessageInflater()
    {
        if (Zlib.InflateInit(ref _stream, WindowBits) != Zlib.Ok)
        {
            throw new InvalidOperationException("zlib could not create a decompressor.");
        }
    }

    /// <summary>The end of the message: RFC 7692 strips the sync-flush tail, the receiver appends it again.</summary>
    public static ReadOnlySpan<byte> MessageTail => [0x00, 0x00, 0xFF, 0xFF];

    public static MessageInflater Rent()
    {
        lock (s_poolLock)
        {
            if (s_pool.TryPop(out var inflater))
            {
                return inflater;
            }
        }

        return new MessageInflater();
    }

    /// <summary>Back to the pool, reset for the next message (or freed when the pool is full).</summary>
    public void Return()
    {
        if (Zlib.InflateReset(ref _stream, WindowBits) == Zlib.Ok)
        {
            lock (s_poolLock)
            {
                if (s_pool.Count < MaxPooled)
                {
                    s_pool.Push(this);
                    return;
                }
            }
        }

        Zlib.InflateEnd(ref _stream);
    }

    /// <summary>Decompresses what it can of <paramref name="input"/> into <paramref name="output"/>.</summary>
    /// <exception cref="InvalidDataException">The input is not valid DEFLATE data.</exception>
    public unsafe void Inflate(ReadOnlySpan<byte> input, Span<byte> output, out int consumed, out int written)
    {
        fixed (byte* inputPointer = input)
        fixed (byte* outputPointer = output)
        {
            _stream.NextIn = (nint)inputPointer;
            _stream.AvailIn = (uint)input.Length;
            _stream.NextOut = (nint)outputPointer;
            _stream.AvailOut = (uint)output.Length;
            var result = Zlib.Inflate(ref _stream, Zlib.SyncFlush);
            consumed = input.Length - (int)_stream.AvailIn;
            written = output.Length - (int)_stream.AvailOut;
            _stream.NextIn = _stream.NextOut = 0;
            if (result is not (Zlib.Ok or Zlib.StreamEnd or Zlib.BufferError))
            {
                throw new InvalidDataException($"The compressed message is not valid DEFLATE data (zlib {result}).");
            }
        }
    }
}

/// <summary>Compresses one outgoing message on its own (no context takeover); see <see cref="MessageInflater"/>.</summary>
internal static class MessageDeflater
{
    /// <summary>
    /// The compressed message in a pooled array (the caller returns it), without the sync-flush tail RFC 7692 strips;
    /// null when it would not be smaller.
    /// </summary>
    public static unsafe byte[]? Compress(ReadOnlySpan<byte> message, int windowBits, out int length)
    {
        var stream = default(Zlib.Stream);
        if (Zlib.DeflateInit(ref stream, windowBits) != Zlib.Ok)
        {
            throw new InvalidOperationException("zlib could not create a compressor.");
        }

        // Room for the message itself: output that would not fit is output not worth sending compressed.
        var output = ArrayPool<byte>.Shared.Rent(message.Length);
        try
        {
            fixed (byte* inputPointer = message)
            fixed (byte* outputPointer = output)
            {
                stream.NextIn = (nint)inputPointer;
                stream.AvailIn = (uint)message.Length;
                stream.NextOut = (nint)outputPointer;
                stream.AvailOut = (uint)output.Length;
                var result = Zlib.Deflate(ref stream, Zlib.SyncFlush);
                length = output.Length - (int)stream.AvailOut;
                if (result is not (Zlib.Ok or Zlib.BufferError) || stream.AvailIn != 0 || stream.AvailOut == 0)
                {
                    ArrayPool<byte>.Shared.Return(output);
                    return null;
                }
            }

            if (output.AsSpan(0, length).EndsWith(MessageInflater.MessageTail))
            {
                length -= MessageInflater.MessageTail.Length;
            }

            return output;
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(output);
            throw;
        }
        finally
        {
            Zlib.DeflateEnd(ref stream);
        }
    }
}
