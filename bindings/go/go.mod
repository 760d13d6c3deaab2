module github.com/libnvcf/nvcf-go

go 1.19
