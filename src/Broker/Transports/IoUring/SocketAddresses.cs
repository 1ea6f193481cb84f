using System.Buffers.Binary;
using System.Net;

namespace Broker.Transports.IoUring;

/// <summary>The peer's address as accept wrote it (a Linux sockaddr_in or sockaddr_in6).</summary>
internal static class SocketAddresses
{
    private const ushort InterNetwork = 2;
    private const ushort InterNetworkV6 = 10;

    public static IPEndPoint? Parse(ReadOnlySpan<byte> sockaddr)
    {
        var family = BitConverter.ToUInt16(sockaddr);
        var port = BinaryPrimitives.ReadUInt16BigEndian(sockaddr[2..]);
        return family switch
        {
            InterNetwork => new IPEndPoint(new IPAddress(sockaddr.Slice(4, 4)), port),
            InterNetworkV6 => new IPEndPoint(new IPAddress(sockaddr.Slice(8, 16), BitConverter.ToUInt32(sockaddr[24..])), port),
            _ => null,
        };
    }
}
