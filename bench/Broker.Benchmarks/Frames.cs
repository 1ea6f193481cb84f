using System.Buffers;
using System.Text;
using Broker.Stomp;

namespace Broker.Benchmarks;

/// <summary>The frames the benchmarks parse and write, encoded by the codec's own writer.</summary>
internal static class Frames
{
    public static byte[] Body(int size)
    {
        var body = new byte[size];
        for (var i = 0; i < size; i++)
        {
            body[i] = (byte)('a' + (i % 26));
        }

        return body;
    }

    // A typical SEND: destination, content-type, receipt, one user header (+ content-length), 100-byte body.
    public static byte[] Send(int bodySize) => Encode(
        StompCommand.Send,
        [("destination", "/queue/orders"), ("content-type", "application/json"), ("receipt", "r-12345"), ("x-trace-id", "4bf92f3577b34da6")],
        Body(bodySize));

    public static byte[] Message(int bodySize) => Encode(
        StompCommand.Message,
        [("subscription", "sub-0"), ("message-id", "session-1-42"), ("destination", "/topic/prices"), ("content-type", "application/octet-stream")],
        Body(bodySize));

    public static byte[] Repeat(byte[] frame, int count)
    {
        var all = new byte[frame.Length * count];
        for (var i = 0; i < count; i++)
        {
            frame.CopyTo(all, i * frame.Length);
        }

        return all;
    }

    public static byte[] Encode(StompCommand command, (string Name, string Value)[] headers, byte[] body)
    {
        var output = new ArrayBufferWriter<byte>();
        StompWriter.WriteCommand(output, command);
        foreach (var (name, value) in headers)
        {
            StompWriter.WriteHeader(output, command, StompVersion.V1_2, name, value);
        }

        StompWriter.WriteBody(output, command, body);
        return output.WrittenSpan.ToArray();
    }

    public static string Describe(byte[] frame) => Encoding.UTF8.GetString(frame.AsSpan(0, Math.Min(frame.Length, 60)));
}
