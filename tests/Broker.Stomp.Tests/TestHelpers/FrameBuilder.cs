using System.Buffers;

namespace Broker.Stomp.Tests.TestHelpers;

/// <summary>Builds <see cref="StompFrame"/>s for the writer and encodes them.</summary>
internal sealed class FrameBuilder : IDisposable
{
    private readonly StompHeaderTable _table = new();

    public FrameBuilder(StompCommand command) => Command = command;

    public StompCommand Command { get; }

    public byte[] Body { get; set; } = [];

    public FrameBuilder Header(string name, string value)
    {
        _table.Add(name, value);
        return this;
    }

    public FrameBuilder WithBody(byte[] body)
    {
        Body = body;
        return this;
    }

    public StompFrame Build() => new(Command, new StompHeaders(_table), new ReadOnlySequence<byte>(Body));

    public byte[] Encode(StompVersion version = StompVersion.V1_2)
    {
        var output = new ArrayBufferWriter<byte>();
        StompWriter.Write(Build(), output, version);
        return output.WrittenSpan.ToArray();
    }

    public void Dispose() => _table.Dispose();
}
