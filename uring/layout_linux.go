package uring

import "unsafe"

func uapiSizes() []uintptr {
	return []uintptr{
		unsafe.Sizeof(SQE{}), unsafe.Sizeof(CQE{}), unsafe.Sizeof(params{}),
		unsafe.Sizeof(geteventsArg{}), unsafe.Sizeof(bufReg{}), unsafe.Sizeof(bufRingEntry{}),
		unsafe.Sizeof(probeHead{}), unsafe.Sizeof(rsrcUpdate{}),
	}
}
