using System.Buffers;
using BenchmarkDotNet.Attributes;
using Broker.Stomp;

namespace Broker.Benchmarks;

/// <summary>Writing throughput and allocations, into a reused buffer as a connection's pipe would be.</summary>
[MemoryDiagnoser]
public class WriterBenchmarks
{
    private const int FanOut = 100;
    private readonly ArrayBufferWriter<byte> _output = new(1 << 20);
    private readonly StompParser _parser = new(new StompParserLimits { MaxFrameBytes = 1 << 20, MaxBodyBytes = 1 << 20 });
    private readonly byte[] _messageId = "session-1-42"u8.ToArray();
    private readonly byte[] _subscription = "sub-0"u8.ToArray();
    private StompFrame _send100;
    private StompFrame _send4K;
    private StompMessageTemplate _message64K = null!;
    private StompMessageTemplate _message100 = null!;

    [GlobalSetup]
    public void Setup()
    {
        // Each parser holds one frame's headers, so keep one parser per frame that stays parsed.
        _send100 = ParseOne(Frames.Send(100), new StompParser());
        _send4K = ParseOne(Frames.Send(4096), new StompParser());
        _message64K = Template(64 * 1024);
        _message100 = Template(100);
    }

    [Benchmark(Description = "write SEND, 4 headers, 100 B body")]
    public int WriteSend100()
    {
        _output.ResetWrittenCount();
        StompWriter.Write(_send100, _output, StompVersion.V1_2);
        return _output.WrittenCount;
    }

    [Benchmark(Description = "write SEND, 4 KiB body")]
    public int WriteSend4K()
    {
        _output.ResetWrittenCount();
        StompWriter.Write(_send4K, _output, StompVersion.V1_2);
        return _output.WrittenCount;
    }

    [Benchmark(Description = "write MESSAGE, 64 KiB body, from template")]
    public int WriteMessage64K()
    {
        _output.ResetWrittenCount();
        _message64K.WriteTo(_output, StompVersion.V1_2, _subscription, _messageId, default);
        return _output.WrittenCount;
    }

    [Benchmark(Description = "write 100 B MESSAGE to 100 subscribers (per frame)", OperationsPerInvoke = FanOut)]
    public int WriteFanOut()
    {
        _output.ResetWrittenCount();
        for (var i = 0; i < FanOut; i++)
        {
            _message100.WriteTo(_output, StompVersion.V1_2, _subscription, _messageId, _messageId);
        }

        return _output.WrittenCount;
    }

    private StompMessageTemplate Template(int bodySize)
    {
        var send = ParseOne(Frames.Send(bodySize), _parser);
        return new StompMessageTemplate(send.Headers, send.Body.ToArray());
    }

    private static StompFrame ParseOne(byte[] bytes, StompParser parser)
    {
        var input = new ReadOnlySequence<byte>(bytes);
        if (!parser.TryParse(ref input, out var frame))
        {
            throw new InvalidOperationException("benchmark frame did not parse");
        }

        return frame;
    }
}
