using System.Runtime.InteropServices;

namespace Broker.Transports.WebSockets;

/// <summary>
/// Raw DEFLATE (RFC 1951) through the zlib that ships inside the .NET runtime (System.IO.Compression.Native, the
/// library DeflateStream itself calls), so the broker needs no zlib of its own. DeflateStream cannot be used here: it
/// has no sync flush and no way to feed a message in pieces as it arrives.
/// </summary>
internal static partial class Zlib
{
    private const string Library = "libSystem.IO.Compression.Native";

    public const int NoFlush = 0;
    public const int SyncFlush = 2;

    public const int Ok = 0;
    public const int StreamEnd = 1;
    public const int BufferError = -5;

    private const int DefaultCompression = -1;
    private const int Deflated = 8;
    private const int DefaultMemLevel = 8;
    private const int DefaultStrategy = 0;

    /// <summary>The runtime's PAL_ZStream: the fields a caller sets; the z_stream itself hides behind internalState.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Stream
    {
        public nint NextIn;
        public nint NextOut;
        public nint Message;
        public nint InternalState;
        public uint AvailIn;
        public uint AvailOut;
    }

    /// <summary>A raw-deflate compressor (negative window bits: no zlib header or trailer).</summary>
    public static int DeflateInit(ref Stream stream, int windowBits) =>
        DeflateInit2(ref stream, DefaultCompression, Deflated, -windowBits, DefaultMemLevel, DefaultStrategy);

    /// <summary>A raw-deflate decompressor.</summary>
    public static int InflateInit(ref Stream stream, int windowBits) => InflateInit2(ref stream, -windowBits);

    /// <summary>Makes a used decompressor new again without freeing its state.</summary>
    public static int InflateReset(ref Stream stream, int windowBits) => InflateReset2(ref stream, -windowBits);

    [LibraryImport(Library, EntryPoint = "CompressionNative_DeflateInit2_")]
    private static partial int DeflateInit2(ref Stream stream, int level, int method, int windowBits, int memLevel, int strategy);

    [LibraryImport(Library, EntryPoint = "CompressionNative_Deflate")]
    public static partial int Deflate(ref Stream stream, int flush);

    [LibraryImport(Library, EntryPoint = "CompressionNative_DeflateEnd")]
    public static partial int DeflateEnd(ref Stream stream);

    [LibraryImport(Library, EntryPoint = "CompressionNative_InflateInit2_")]
    private static partial int InflateInit2(ref Stream stream, int windowBits);

    [LibraryImport(Library, EntryPoint = "CompressionNative_InflateReset2_")]
    private static partial int InflateReset2(ref Stream stream, int windowBits);

    [LibraryImport(Library, EntryPoint = "CompressionNative_Inflate")]
    public static partial int Inflate(ref Stream stream, int flush);

    [LibraryImport(Library, EntryPoint = "CompressionNative_InflateEnd")]
    public static partial int InflateEnd(ref Stream stream);
}
